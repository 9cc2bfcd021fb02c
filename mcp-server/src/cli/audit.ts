/** `loki audit verify [--json]` and `loki audit export [FILE]`: the audit chain, checked or copied out. */
import fs from 'node:fs';
import type { Project } from '../project.js';
import { print, printJson } from './output.js';
import { CliError } from '../errors.js';

export function auditVerifyCommand(project: Project, json: boolean): number {
  const store = project.existingStore();
  if (!store) {
    if (json) printJson({ ok: true, count: 0, note: 'no .loki/ in this project' });
    else print(`No .loki/ in ${project.root}: nothing to verify.`);
    return 0;
  }
  const r = store.audit.verify();
  if (json) {
    printJson(r);
    return r.ok ? 0 : 1;
  }
  const anchors = r.anchors.map((a) => `${a.label}: ${a.status}${a.count !== null ? ` (${a.count} entries)` : ''}`);
  if (r.ok) {
    print([`Audit log OK: ${r.count} entries, head ${r.head.slice(0, 16)}.`, ...anchors].join('\n'));
    return 0;
  }
  print(
    [
      `Audit log BROKEN at entry ${r.firstBreak!.index}: ${r.firstBreak!.reason}`,
      `${r.count} entries verified before the break.`,
      ...anchors,
    ].join('\n'),
  );
  return 1;
}

/**
 * Write every entry as one JSON line, exactly the text its hash covers: the export verifies on its own
 * (chain.ts verifyChainText) and, kept outside the project, is an anchor the agent cannot reach.
 */
export function auditExportCommand(project: Project, file: string | undefined): number {
  const store = project.existingStore();
  const lines = store ? store.audit.exportLines() : [][Symbol.iterator]();
  if (file === undefined) {
    for (const line of lines) process.stdout.write(line);
    return 0;
  }
  // A new file only, private to the user: an export never overwrites anything.
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'EEXIST'
        ? `${file} already exists: give a new file name (an export never overwrites)`
        : `cannot create ${file}: ${(err as Error).message}`,
    );
  }
  let count = 0;
  try {
    for (const line of lines) {
      fs.writeSync(fd, line);
      count++;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  print(`Wrote ${count} audit entries to ${file}.`);
  return 0;
}
