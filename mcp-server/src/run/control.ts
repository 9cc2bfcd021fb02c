/**
 * A person's pause, resume and stop (`loki pause|resume|stop`, the dashboard's buttons): the signal files written
 * or cleared in one audited transaction, recorded as the person's action (run/person.ts).
 */
import type { Project } from '../project.js';
import { personAt } from './person.js';
import { PAUSE, STOP, clearMarker, writeMarker } from './signals.js';

export const SIGNAL_VERBS = ['pause', 'resume', 'stop'] as const;
export type SignalVerb = (typeof SIGNAL_VERBS)[number];

export interface SignalResult {
  verb: SignalVerb;
  /** The files written or removed: empty when nothing changed (already paused, nothing to resume). */
  changed: string[];
  message: string;
}

export async function signalRun(project: Project, verb: SignalVerb, where: string): Promise<SignalResult> {
  const who = personAt(project, `${verb} the run`);
  // Nothing to clear where there is no .loki/: said without creating one.
  if (verb === 'resume' && !project.hasStore())
    return { verb, changed: [], message: 'Nothing to resume: no PAUSE or STOP.' };
  const store = project.openStore();
  const stamp = new Date().toISOString();
  const changed = await store.mutate(
    () => {
      if (verb === 'pause') return writeMarker(store, PAUSE, `paused by ${where} at ${stamp}`) ? [PAUSE] : [];
      if (verb === 'stop') return writeMarker(store, STOP, `stopped by ${where} at ${stamp}`) ? [STOP] : [];
      return [clearMarker(store, PAUSE) && PAUSE, clearMarker(store, STOP) && STOP].filter((x): x is string =>
        Boolean(x),
      );
    },
    (c) => (c.length ? { action: `signal.${verb}`, actor: who.actor, data: { files: c } } : undefined),
  );
  const messages = {
    pause: changed.length
      ? 'Paused: the agent will hold at its next turn. Resume with `loki resume`.'
      : 'Already paused (.loki/PAUSE exists).',
    stop: changed.length
      ? 'Stop requested: the agent will end at its next turn. `loki resume` clears it before a new start.'
      : 'A stop is already requested (.loki/STOP exists).',
    resume: changed.length
      ? `Resumed: removed ${changed.map((c) => `.loki/${c}`).join(' and ')}.`
      : 'Nothing to resume: no PAUSE or STOP.',
  };
  return { verb, changed, message: messages[verb] };
}
