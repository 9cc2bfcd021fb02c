/** Which directory is the project: resolved once per process, before anything else is read. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ProjectRootError } from './errors.js';

export type RootSource = '--project-dir' | 'LOKI_PROJECT_DIR' | 'CLAUDE_PROJECT_DIR' | 'working directory';

/**
 * Resolve the project root: `--project-dir`, then LOKI_PROJECT_DIR, then CLAUDE_PROJECT_DIR, then the working
 * directory. Refuses `/` (Cline starts servers there) and the home directory (unless it already has `.loki/`).
 */
export function resolveProjectRoot(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): { root: string; source: RootSource } {
  const candidates: [string | undefined, RootSource][] = [
    [flag, '--project-dir'],
    [env.LOKI_PROJECT_DIR, 'LOKI_PROJECT_DIR'],
    [env.CLAUDE_PROJECT_DIR, 'CLAUDE_PROJECT_DIR'],
    [cwd, 'working directory'],
  ];
  const [given, source] = candidates.find(([v]) => v !== undefined && v.trim() !== '')!;
  const how = 'pass --project-dir /path/to/project or set LOKI_PROJECT_DIR';
  if (given!.includes('\0')) throw new ProjectRootError(`the project root from ${source} contains a NUL byte; ${how}`);
  const absolute = path.resolve(cwd, given!);
  let real: string;
  try {
    real = fs.realpathSync.native(absolute);
  } catch {
    throw new ProjectRootError(`the project root ${absolute} (from ${source}) does not exist; ${how}`);
  }
  if (!fs.statSync(real).isDirectory())
    throw new ProjectRootError(`the project root ${real} (from ${source}) is not a directory; ${how}`);
  if (real === path.parse(real).root) {
    throw new ProjectRootError(
      `the project root resolved to ${real} (from ${source}), which is refused: hosts such as Cline start servers in /. ${how}`,
    );
  }
  let home: string | undefined;
  try {
    home = fs.realpathSync.native(os.homedir());
  } catch {
    home = undefined;
  }
  if (home && real === home && !fs.existsSync(path.join(real, '.loki'))) {
    throw new ProjectRootError(`the project root resolved to your home directory ${real} (from ${source}); ${how}`);
  }
  return { root: real, source };
}
