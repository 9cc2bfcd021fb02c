/**
 * `loki say "..."`: a person's directive to the agent, written to .loki/HUMAN_INPUT.md (run/signals.ts), which
 * the agent's next loki_status delivers once and archives. Subject to LOKI_PROMPT_INJECTION as delivery is: with
 * it off the file would only sit there ignored, so the directive is refused with the reason and nothing is
 * written. (The setting is read here as this process sees it, from .loki/config.yaml and this terminal's
 * environment; the server that delivers reads its own. The refusal names both places.)
 */
import type { Project } from '../project.js';
import { personAt } from './person.js';
import { HUMAN_INPUT, appendHumanInput } from './signals.js';
import { readRun } from './state.js';
import { UsageError } from '../errors.js';

export const DIRECTIVES_OFF =
  'directives are off: LOKI_PROMPT_INJECTION is not true, so the agent would never be handed it. Set LOKI_PROMPT_INJECTION=true (in this terminal and where the agent runs) or signals.promptInjection: true in .loki/config.yaml, then say it again. Nothing was written.';

export interface Directive {
  /** The size of HUMAN_INPUT.md now. */
  bytes: number;
  /** Another directive was waiting to be delivered: this one follows it. */
  appended: boolean;
}

export async function sendDirective(project: Project, text: string): Promise<Directive> {
  const who = personAt(project, 'send the agent a directive');
  const config = project.config();
  if (!config.promptInjection) throw new UsageError(DIRECTIVES_OFF);
  if (!text.trim()) throw new UsageError('say what the agent should do: loki say "..."');
  // No run, no agent to hand it to: refused without creating .loki/.
  const store = project.existingStore();
  if (!store || !readRun(store)) throw new UsageError('no run yet in this project: there is no agent to tell');
  return store.mutate(
    (): Directive => {
      const appended = store.exists(HUMAN_INPUT);
      return { bytes: appendHumanInput(store, text, config.humanInputMaxBytes), appended };
    },
    // The text itself is not copied into the audit log: the delivery archives it under .loki/logs/.
    (d) => ({ action: 'human-input.write', actor: who.actor, data: { bytes: d.bytes, appended: d.appended } }),
  );
}
