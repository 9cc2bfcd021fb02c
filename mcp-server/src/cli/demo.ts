/** `loki demo`: run the offline demo (scripts/demo.mjs, bundled into dist/demo.mjs) against this installation. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError } from '../errors.js';

export function demoCommand(): number {
  // The package ships the demo bundled (dist/demo.mjs: it needs the MCP SDK's client, which is not installed
  // with the package); a checkout without a build runs the script itself.
  const bundled = fileURLToPath(new URL('./demo.mjs', import.meta.url));
  const script = fs.existsSync(bundled) ? bundled : fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));
  if (!fs.existsSync(script)) throw new CliError(`the demo script is missing (${script}); reinstall loki-mode`, 1);
  const r = spawnSync(process.execPath, [script], { stdio: 'inherit' });
  return r.status ?? 1;
}
