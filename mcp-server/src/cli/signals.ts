/** `loki pause | resume | stop`: write or clear the signal files, through the store (audited). */
import type { Project } from '../project.js';
import { PAUSE, STOP, clearMarker, writeMarker } from '../run/signals.js';
import { print } from './output.js';

export async function signalCommand(project: Project, verb: 'pause' | 'resume' | 'stop'): Promise<number> {
  // Nothing to clear where there is no .loki/: said without creating one.
  if (verb === 'resume' && !project.hasStore()) {
    print('Nothing to resume: no PAUSE or STOP.');
    return 0;
  }
  const store = project.openStore();
  const stamp = new Date().toISOString();
  const changed = await store.mutate(
    () => {
      if (verb === 'pause') return writeMarker(store, PAUSE, `paused by loki pause at ${stamp}`) ? ['PAUSE'] : [];
      if (verb === 'stop') return writeMarker(store, STOP, `stopped by loki stop at ${stamp}`) ? ['STOP'] : [];
      return [clearMarker(store, PAUSE) && 'PAUSE', clearMarker(store, STOP) && 'STOP'].filter((x): x is string =>
        Boolean(x),
      );
    },
    (c) => (c.length ? { action: `signal.${verb}`, data: { files: c } } : undefined),
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
  print(messages[verb]);
  return 0;
}
