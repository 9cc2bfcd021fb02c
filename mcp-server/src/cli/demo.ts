/** `loki demo`: run the offline demo (scripts/demo.mjs, shipped with the package) against this installation. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from '../errors.js';

export function demoCommand(): number {
  const script = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));
  if (!fs.existsSync(script)) throw new CliError(`the demo script is missing (${script}); reinstall loki-mode`, 1);
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  return r.status ?? 1;
}
