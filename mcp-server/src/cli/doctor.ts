/** `loki doctor [--fix] [--json]`: is this machine and this project in a state Loki Mode can run in? */
import fs from 'node:fs';
import path from 'node:path';
import type { Project, RootSource } from '../project.js';
import { clearStaleLocks, inspectLocks } from '../store/lock.js';
import { listSessions } from '../run/sessions.js';
import { readRun } from '../run/state.js';
import { sessionLiveness } from '../run/records.js';
import { print, printJson } from './output.js';

type Level = 'ok' | 'warn' | 'fail';
interface Check {
  name: string;
  level: Level;
  detail: string;
}

const MIN_NODE = [20, 17] as const;

export function doctorCommand(project: Project, rootSource: RootSource, fix: boolean, json: boolean): number {
  const checks: Check[] = [];
  const add = (name: string, level: Level, detail: string) => checks.push({ name, level, detail });

  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  add('node', nodeOk ? 'ok' : 'fail', `Node ${process.versions.node}${nodeOk ? '' : `: loki-mode needs >= ${MIN_NODE.join('.')}`}`);
  add('project root', 'ok', `${project.root} (from ${rootSource})`);

  const lokiPath = path.join(project.root, '.loki');
  let lokiState: fs.Stats | undefined;
  try {
    lokiState = fs.lstatSync(lokiPath);
  } catch {
    lokiState = undefined;
  }
  if (!lokiState) {
    add('.loki/', 'ok', 'not created yet (the first run creates it)');
  } else if (lokiState.isSymbolicLink() || !lokiState.isDirectory()) {
    add('.loki/', 'fail', `${lokiPath} is ${lokiState.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}; loki-mode refuses it: move it aside`);
  } else {
    inspectStore(project, fix, add);
  }

  const config = project.effectiveConfig();
  add('config', config.problems.length ? 'fail' : 'ok', config.problems.length ? config.problems.join('; ') : 'valid');

  const failed = checks.some((c) => c.level === 'fail');
  if (json) printJson({ ok: !failed, checks });
  else {
    for (const c of checks) print(`${c.level === 'ok' ? 'ok  ' : c.level === 'warn' ? 'warn' : 'FAIL'}  ${c.name.padEnd(14)} ${c.detail}`);
    print(failed ? '\nProblems found (FAIL lines above say how to fix each).' : '\nAll checks passed.');
  }
  return failed ? 1 : 0;
}

function inspectStore(project: Project, fix: boolean, add: (name: string, level: Level, detail: string) => void): void {
  const store = project.openStore();
  const writable = (() => {
    try {
      fs.accessSync(store.loki.root, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  add('.loki/', writable ? 'ok' : 'fail', writable ? store.loki.root : `${store.loki.root} is not writable by this user`);

  const run = readRun(store);
  const sessions = listSessions(store);
  const live = sessions.filter((s) => sessionLiveness(s) === 'running').length;
  add('run', 'ok', run ? `${run.runId} ${run.status}, phase ${run.phase}, ${live} live session(s) of ${sessions.length}` : 'no run yet');
  if (store.records.quarantined.length) {
    add('records', 'warn', store.records.quarantined.map((q) => `.loki/${q.file}: ${q.reason} (moved to ${q.movedTo ?? 'nowhere'})`).join('; '));
  } else {
    add('records', 'ok', 'all readable');
  }

  const lockDir = store.lockDir;
  if (fix) {
    const removed = clearStaleLocks(lockDir);
    if (removed.length) add('locks', 'ok', `removed stale lock(s): ${removed.join(', ')}`);
  }
  const locks = inspectLocks(lockDir);
  const stale = locks.filter((l) => l.stale);
  if (stale.length) add('locks', 'fail', `stale: ${stale.map((l) => `${l.name} (${l.owner})`).join(', ')}; run \`loki doctor --fix\` to remove them`);
  else add('locks', 'ok', locks.length ? `held: ${locks.map((l) => `${l.name} by ${l.owner}`).join(', ')}` : 'none held');

  const audit = store.audit.verify();
  add(
    'audit chain',
    audit.ok ? 'ok' : 'fail',
    audit.ok
      ? `${audit.count} entries verified against ${audit.anchors.filter((a) => a.status === 'ok').length} anchor(s)`
      : `broken at entry ${audit.firstBreak!.index}: ${audit.firstBreak!.reason}. The log was changed outside loki-mode; keep .loki/audit/ as evidence and see \`loki audit verify\``,
  );
}
