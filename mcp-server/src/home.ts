import os from 'node:os';
import path from 'node:path';

/** `~/.loki` (or LOKI_HOME): cross-project learnings, the external audit anchors and the code cache. */
export function lokiHomeDir(env: NodeJS.ProcessEnv): string {
  return env.LOKI_HOME && env.LOKI_HOME.trim() !== '' ? path.resolve(env.LOKI_HOME) : path.join(os.homedir(), '.loki');
}
