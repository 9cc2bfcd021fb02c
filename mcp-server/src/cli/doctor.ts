/**
 * `loki doctor [--fix] [--json]`: is this machine and this project in a state Loki Mode can run in? Every damaged
 * state it can meet is named, with what to do, and makes it exit 1: `.loki/` that is not a folder, a disk that is
 * full, read-only or not ours, a database that cannot be opened or is damaged, records that no longer match their
 * schema (with what they held), checkpoints that cannot be restored, a rollback left half done, a broken audit
 * chain or trust records changed behind the server's back. Each check stands alone: one failing never hides the
 * others. Without `--fix` it changes nothing on disk (the store is opened read-only). `--fix` does what can be
 * done safely: it finishes an interrupted rollback (keeping the files it finds in a checkpoint first), removes
 * checkpoints whose state can never come back, moves a snapshot changed behind loki-mode's back aside as evidence,
 * records those whose code is gone as state-only, rebuilds a damaged memory index and checkpoints a large
 * write-ahead log. A checkpoint that could not be checked (git would not run, a snapshot could not be opened just
 * now) is named with the error and left alone.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Project, RootSource } from '../project.js';
import {
  clineSkillInstalled,
  codexSkillInstalled,
  findPlugin,
  findRegistrations,
  type Registration,
} from '../install/registrations.js';
import { VERSION } from '../version.js';
import { isExpectedError } from '../errors.js';
import { DB_FILE } from '../store/db.js';
import { asDiskError, diskCause, freeBytes } from '../store/disk.js';
import { bindingProblems } from '../store/bindings.js';
import { printable } from '../store/paths.js';
import { parseStored, type Schema } from '../store/schema.js';
import { Store } from '../store/store.js';
import { taskSchema } from '../queue/records.js';
import { memoryItemSchema } from '../memory/model.js';
import { inspectCheckpoints, repairCheckpoints, type CheckpointDamage } from '../checkpoints/integrity.js';
import { JOURNAL_KEY, JOURNAL_RECORD } from '../checkpoints/records.js';
import { finishInterruptedRollback } from '../checkpoints/rollback.js';
import { DOCUMENT_TYPES } from '../run/documents.js';
import { listSessions } from '../run/sessions.js';
import { readRun } from '../run/state.js';
import { sessionLiveness } from '../run/records.js';
import { unknownLokiEnv } from '../config/env-names.js';
import { paint, print, printJson } from './output.js';

type Level = 'ok' | 'warn' | 'fail';
interface Check {
  name: string;
  level: Level;
  detail: string;
}
type Add = (name: string, level: Level, detail: string) => void;

const MIN_NODE = [22, 13] as const;
/** A write-ahead log larger than this is checkpointed by `--fix` (it only grows while readers hold it). */
const WAL_WARN_BYTES = 64 * 1024 * 1024;
/** Free space below this (plus two copies of the database: a checkpoint copies it) is worth a warning. */
const LOW_SPACE_BYTES = 64 * 1024 * 1024;
/** How many damaged records or checkpoints a line names before it counts the rest. */
const NAMED = 5;

export function doctorCommand(project: Project, rootSource: RootSource, fix: boolean, json: boolean): number {
  const checks: Check[] = [];
  const add: Add = (name, level, detail) => checks.push({ name, level, detail });

  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  add(
    'node',
    nodeOk ? 'ok' : 'fail',
    `Node ${process.versions.node}${nodeOk ? '' : `: loki-mode needs >= ${MIN_NODE.join('.')}`}`,
  );
  add('project root', 'ok', `${project.root} (from ${rootSource})`);
  attempt('git', add, () => inspectGit(project.root, add));
  attempt('hosts', add, () => inspectHosts(project, add));

  const lokiPath = path.join(project.root, '.loki');
  let lokiState: fs.Stats | undefined;
  let lstatError: unknown;
  try {
    lokiState = fs.lstatSync(lokiPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') lstatError = err;
  }
  if (lstatError) {
    add(
      '.loki/',
      'fail',
      asDiskError(lstatError, lokiPath)?.message ?? `cannot look at ${lokiPath}: ${message(lstatError)}`,
    );
  } else if (!lokiState) {
    add('.loki/', 'ok', 'not created yet (the first run creates it)');
  } else if (lokiState.isSymbolicLink() || !lokiState.isDirectory()) {
    add(
      '.loki/',
      'fail',
      `${lokiPath} is ${lokiState.isSymbolicLink() ? 'a symbolic link' : 'a file, not a directory'}; loki-mode refuses it: move it aside (mv .loki .loki.bad)`,
    );
  } else {
    inspectDisk(lokiPath, add);
    inspectStore(project, lokiPath, fix, add);
  }

  attempt('config', add, () => {
    const config = project.effectiveConfig();
    add(
      'config',
      config.problems.length ? 'fail' : 'ok',
      config.problems.length ? config.problems.join('; ') : 'valid',
    );
    // A warning, not a failure: the run is sound without it, but the person's intent is being ignored.
    const unknown = unknownLokiEnv(process.env);
    if (unknown.length)
      add(
        'environment',
        'warn',
        unknown
          .map((u) => `${u.name} is not a variable loki reads${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}`)
          .join('; '),
      );
  });

  const failed = checks.some((c) => c.level === 'fail');
  if (json) printJson({ ok: !failed, checks });
  else {
    for (const c of checks)
      print(
        `${c.level === 'ok' ? paint('green', 'ok  ') : c.level === 'warn' ? paint('yellow', 'warn') : paint('red', 'FAIL')}  ${c.name.padEnd(14)} ${c.detail}`,
      );
    print(failed ? '\nProblems found (FAIL lines above say how to fix each).' : '\nAll checks passed.');
  }
  return failed ? 1 : 0;
}

/** git runs checkpoints of the files and the diff the completion gate verifies. */
function inspectGit(root: string, add: Add): void {
  const version = spawnSync('git', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (version.status !== 0) {
    add(
      'git',
      'fail',
      `git does not run here (${version.error?.message ?? version.stderr.trim()}): loki-mode needs it for checkpoints of the files and the verified diff; install git`,
    );
    return;
  }
  const inside = spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: root, encoding: 'utf8' });
  if (inside.status === 0 && inside.stdout.trim() === 'true') add('git', 'ok', version.stdout.trim());
  else
    add(
      'git',
      'warn',
      `${version.stdout.trim()}, but ${root} is not a git repository: checkpoints keep the .loki/ state only and completion cannot show a diff (git init)`,
    );
}

/**
 * Each host's registration of the server for this project, and whether the server it names starts (it is asked
 * `initialize`, which reads and writes nothing of the project); the Claude Code plugin's files and the package it runs. A
 * registration whose server does not start fails; having none, or an npx package not downloaded yet, warns.
 */
function inspectHosts(project: Project, add: Add): void {
  const home = project.env.HOME || os.homedir();
  const regs = findRegistrations(project.root, project.env, home);
  const plugin = findPlugin(project.env, home);
  for (const reg of regs) inspectRegistration(project.root, reg, add);
  if (regs.some((r) => r.host === 'codex') && !codexSkillInstalled(project.env, home))
    add('codex skill', 'warn', 'Codex has the server but not the loki-mode skill: loki install codex --user adds it');
  if (regs.some((r) => r.host === 'cline') && !clineSkillInstalled(home))
    add('cline skill', 'warn', 'Cline has the server but not the loki-mode skill: loki install cline adds it');
  if (plugin) inspectPlugin(plugin, project.root, add);
  if (regs.length === 0 && !plugin)
    add(
      'hosts',
      'warn',
      'no host has the loki server registered for this project: loki install claude|codex|cline, or the Claude Code plugin (docs/hosts.md)',
    );
}

function inspectRegistration(root: string, reg: Registration, add: Add): void {
  const name = reg.where;
  if (reg.problem || !reg.entry) {
    add(name, 'fail', `${reg.file} ${reg.problem ?? 'has no usable entry'}; fix it, then run loki install ${reg.host}`);
    return;
  }
  const { command, args, env } = reg.entry;
  if (typeof command !== 'string' || !Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    add(name, 'fail', `the loki entry in ${reg.file} has no command and args; run loki install ${reg.host} again`);
    return;
  }
  const pinned = (env as Record<string, unknown> | undefined)?.LOKI_PROJECT_DIR;
  const pin =
    typeof pinned === 'string' && !pinned.includes('${') && path.resolve(pinned) !== root
      ? `; it is pinned to ${pinned}, not this project`
      : '';
  if (command === 'npx' || path.basename(command) === 'npx') {
    const at = args.indexOf('-p');
    const spec = at >= 0 ? args[at + 1] : undefined;
    if (!spec || !/^loki-mode(@|$)/.test(spec) || !args.includes('loki-mcp')) {
      add(
        name,
        'fail',
        `${reg.file} starts \`npx ${args.join(' ')}\`, which is not loki-mode's server (the form is npx -y -p loki-mode loki-mcp): run loki install ${reg.host} again`,
      );
      return;
    }
    const probe = startProbe('npx', ['--offline', ...args], env, root);
    if (probe.ok)
      add(
        name,
        pin ? 'warn' : 'ok',
        `${reg.file}: the package ${spec} by npx, starts (loki-mode ${probe.version})${pin}`,
      );
    else
      add(
        name,
        'warn',
        `${reg.file}: the package ${spec} by npx, not downloaded yet: the host fetches it from the npm registry on its first start${pin}`,
      );
    return;
  }
  const probe = startProbe(command, args, env, root);
  if (!probe.ok) {
    add(
      name,
      'fail',
      `${reg.file} starts ${[command, ...args].join(' ')}, which does not start (${probe.why}): run loki install ${reg.host} again`,
    );
    return;
  }
  const other = probe.version !== VERSION ? `; this loki is ${VERSION}` : '';
  add(name, pin || other ? 'warn' : 'ok', `${reg.file}: starts (loki-mode ${probe.version})${other}${pin}`);
}

/** The plugin's own files, and the package its launcher runs (installed on the first session). */
function inspectPlugin(
  plugin: { installPath: string; version: string; dataDir: string },
  root: string,
  add: Add,
): void {
  const missing = ['launch.cjs', '.mcp.json', 'hooks/hooks.json', 'SKILL.md'].filter(
    (f) => !fs.existsSync(path.join(plugin.installPath, f)),
  );
  if (missing.length > 0) {
    add(
      'claude plugin',
      'fail',
      `${plugin.installPath} lacks ${missing.join(', ')}: claude plugin uninstall loki-mode@loki-mode, then install it again`,
    );
    return;
  }
  const dist = path.join(plugin.dataDir, plugin.version, 'node_modules', 'loki-mode', 'mcp-server', 'dist');
  const server = path.join(dist, 'loki-mcp.js');
  if (!fs.existsSync(server)) {
    add(
      'claude plugin',
      'warn',
      `loki-mode ${plugin.version} installed; its first session installs the loki-mode package into ${plugin.dataDir} (needs the npm registry)`,
    );
    return;
  }
  const missingBuilt = [
    'server.cjs',
    'loki-hook.cjs',
    'hook.cjs',
    'hook-guard.cjs',
    'hook-usage.cjs',
    'yaml.cjs',
  ].filter((f) => !fs.existsSync(path.join(dist, f)));
  const probe =
    missingBuilt.length === 0 ? startProbe(process.execPath, [server], { CLAUDE_PROJECT_DIR: root }, root) : undefined;
  if (!probe?.ok)
    add(
      'claude plugin',
      'fail',
      `${dist} ${missingBuilt.length ? `lacks ${missingBuilt.join(', ')}` : `does not start (${probe?.why})`}: remove ${path.join(plugin.dataDir, plugin.version)} and start a new session (the plugin installs it again)`,
    );
  else add('claude plugin', 'ok', `loki-mode ${plugin.version}, its hooks and server built in ${dist} (starts)`);
}

const INITIALIZE = `${JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'loki doctor', version: VERSION } },
})}\n`;

/**
 * Start a server as its host would (in the project, with the entry's environment) and ask it `initialize`, then
 * close its input: it answers and exits. Answering initialize reads nothing of the project and writes nothing.
 */
function startProbe(
  command: string,
  args: string[],
  env: unknown,
  cwd: string,
): { ok: true; version: string } | { ok: false; why: string } {
  const extra =
    env && typeof env === 'object'
      ? Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string' && !v.includes('${')))
      : {};
  const r = spawnSync(command, args, {
    cwd,
    input: INITIALIZE,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ...extra, LOKI_NO_CODE_CACHE: '1', npm_config_update_notifier: 'false' },
  });
  const version = answeredVersion(r.stdout ?? '');
  if (version) return { ok: true, version };
  const said = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
  // Node's own failure puts the error on one line among the stack: that line says what went wrong.
  const error = /^\w*Error\b.*$/m.exec(said)?.[0] ?? said.split('\n').find((l) => l.trim());
  return { ok: false, why: r.error?.message ?? error ?? `exit ${r.status}` };
}

/** The version in loki-mode's answer to the probe's initialize, if it answered. */
function answeredVersion(stdout: string): string | undefined {
  for (const line of stdout.split('\n')) {
    try {
      const msg = JSON.parse(line) as { id?: unknown; result?: { serverInfo?: { name?: unknown; version?: unknown } } };
      const info = msg.id === 1 ? msg.result?.serverInfo : undefined;
      if (info?.name === 'loki-mode' && typeof info.version === 'string') return info.version;
    } catch {
      /* not a message */
    }
  }
  return undefined;
}

/** Run one check; whatever it throws is that check failing, said as it is, never the end of the others. */
function attempt(name: string, add: Add, check: () => void, lokiDir?: string): void {
  try {
    check();
  } catch (err) {
    add(name, 'fail', describe(err, lokiDir));
  }
}

/** An error as a check's detail: its own words when it says what to do, else what went wrong. */
function describe(err: unknown, lokiDir?: string): string {
  const known = isExpectedError(err) ? err : asDiskError(err, lokiDir);
  return known ? known.message : `could not be checked: ${message(err)}`;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Can this user write `.loki/` and the database in it, and is there room? Asked of the disk, not guessed. */
function inspectDisk(lokiPath: string, add: Add): void {
  const cause = diskCause(lokiPath);
  if (cause) {
    add('.loki/', 'fail', cause.message);
    return;
  }
  const free = freeBytes(lokiPath);
  let dbBytes = 0;
  try {
    dbBytes = fs.statSync(path.join(lokiPath, DB_FILE)).size;
  } catch {
    dbBytes = 0;
  }
  if (free !== undefined && free < 2 * dbBytes + LOW_SPACE_BYTES) {
    add(
      '.loki/',
      'warn',
      `${lokiPath}: only ${mib(free)} free on its disk (the database is ${mib(dbBytes)}, and each checkpoint copies it): free some space`,
    );
    return;
  }
  add('.loki/', 'ok', `${lokiPath}${free === undefined ? '' : ` (${mib(free)} free)`}`);
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;

/**
 * Without `fix` the store is opened read-only (Store.open readOnly): the doctor then changes nothing on disk, not
 * even the folder's mode, `.loki/.gitignore` or a pending migration.
 */
function inspectStore(project: Project, lokiDir: string, fix: boolean, add: Add): void {
  let store: Store;
  try {
    store = fix
      ? project.openStore()
      : Store.open(project.root, project.lokiHome, project.actor, undefined, { readOnly: true });
  } catch (err) {
    add(
      'database',
      'fail',
      isExpectedError(err)
        ? err.message
        : (asDiskError(err, lokiDir, `cannot open .loki/${DB_FILE}`)?.message ??
            `cannot open .loki/${DB_FILE}: ${message(err)}; move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) to start afresh`),
    );
    return;
  }

  // The read-only connection cannot remove the -wal and -shm files it makes SQLite create; this one, closed
  // last, does, as every loki process does when it closes the database last.
  const queryOnly = fix ? undefined : openQueryOnly(store.db.file);
  try {
    inspectOpenStore(project, store, lokiDir, fix, add, queryOnly);
  } finally {
    if (!fix) store.close();
    queryOnly?.close();
  }
}

type Connection = InstanceType<typeof import('node:sqlite').DatabaseSync>;

/**
 * A connection that may write but is told not to (query_only): SQLite skips the CHECK constraints in the
 * integrity_check of a database opened read-only. Undefined where it cannot be opened (a read-only disk).
 */
function openQueryOnly(file: string): Connection | undefined {
  const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
  let conn: Connection | undefined;
  try {
    conn = new DatabaseSync(file, { timeout: 5000 });
    conn.exec('PRAGMA query_only = ON');
    return conn;
  } catch {
    conn?.close();
    return undefined;
  }
}

function inspectOpenStore(
  project: Project,
  store: Store,
  lokiDir: string,
  fix: boolean,
  add: Add,
  queryOnly: Connection | undefined,
): void {
  let db: { level: Level; detail: string; usable?: boolean };
  try {
    db = inspectDatabase(store, fix, queryOnly);
  } catch (err) {
    db = { level: 'fail', detail: describe(err, lokiDir) };
  }
  add('database', db.level, db.detail);
  if (db.level === 'fail' && !db.usable) return;

  // First, as it changes the working tree and the state the later checks read.
  attempt('rollback', add, () => inspectRollback(project, store, fix, add), lokiDir);

  attempt(
    'records',
    add,
    () => {
      const damaged = damagedRecords(store);
      if (damaged.length === 0) add('records', 'ok', 'every record matches its schema');
      else
        add(
          'records',
          'fail',
          `${named(damaged)}. They were changed outside loki-mode and no tool can read them: restore the state from a checkpoint (loki rollback list, then loki rollback to ID)`,
        );
    },
    lokiDir,
  );

  attempt('checkpoints', add, () => inspectCheckpointsCheck(project, store, fix, add), lokiDir);

  attempt(
    'run',
    add,
    () => {
      const run = readRun(store);
      const sessions = listSessions(store);
      const live = sessions.filter((s) => sessionLiveness(s) === 'running').length;
      add(
        'run',
        'ok',
        run
          ? `${run.runId} ${run.status}, phase ${run.phase}, ${live} live session(s) of ${sessions.length}`
          : 'no run yet',
      );
    },
    lokiDir,
  );

  attempt(
    'audit chain',
    add,
    () => {
      const audit = store.audit.verify();
      add(
        'audit chain',
        audit.ok ? 'ok' : 'fail',
        audit.ok
          ? `${audit.count} entries verified against ${audit.anchors.filter((a) => a.status === 'ok').length} anchor(s)`
          : `broken at entry ${audit.firstBreak!.index}: ${audit.firstBreak!.reason}. The log was changed outside loki-mode; keep .loki/loki.db as evidence and see \`loki audit verify\``,
      );
    },
    lokiDir,
  );

  attempt(
    'trust records',
    add,
    () => {
      const tampered = bindingProblems(store);
      add(
        'trust records',
        tampered.length === 0 ? 'ok' : 'fail',
        tampered.length === 0
          ? 'every run, verification, checklist, council and trust record matches what the audit log bound'
          : `${named(tampered)}. Completion is refused until .loki/ is restored from a checkpoint (loki rollback) or a new run starts; keep .loki/loki.db as evidence`,
      );
    },
    lokiDir,
  );
}

const named = (items: readonly string[]) =>
  `${items.slice(0, NAMED).join('; ')}${items.length > NAMED ? `; and ${items.length - NAMED} more` : ''}`;

/**
 * A rollback whose state was restored but whose files were not (killed in between: its journal is left) is a
 * working tree half way between two checkpoints. Named, and finished by `--fix`.
 */
function inspectRollback(project: Project, store: Store, fix: boolean, add: Add): void {
  const journal = store.records.read(JOURNAL_KEY, JOURNAL_RECORD);
  if (!journal) return;
  if (!fix) {
    add(
      'rollback',
      'fail',
      `the rollback to ${journal.target} (started ${journal.startedAt} by ${journal.actor}) was interrupted: the .loki/ state is restored, the files are not. Finish it with loki doctor --fix (or loki rollback to ${journal.target} --code); to undo it instead, loki rollback to ${journal.preRollback} --code`,
    );
    return;
  }
  const done = finishInterruptedRollback(project);
  const files = done?.changes.code;
  add(
    'rollback',
    'ok',
    done
      ? `finished the interrupted rollback to ${done.target}: files restored${files ? ` (${files.added} added, ${files.modified} modified, ${files.removed} removed)` : ''}; undo it with loki rollback to ${done.preRollback} --code${done.keptFiles ? `. The files as found (changed after the interruption, or half restored) were kept first in checkpoint ${done.keptFiles}: get them back with loki rollback to ${done.keptFiles} --code` : ''}`
      : 'the interrupted rollback was finished meanwhile by another loki process',
  );
}

/**
 * Every checkpoint, checked whole. `--fix` removes those whose state can never be restored, records those whose
 * code snapshot is gone as state-only (what they still are), and moves tamper evidence aside. A checkpoint that
 * could not be checked (git would not run, its snapshot could not be opened just now) is named and left alone.
 */
function inspectCheckpointsCheck(project: Project, store: Store, fix: boolean, add: Add): void {
  const { count, damaged } = inspectCheckpoints(project.root, store);
  if (damaged.length === 0) {
    add(
      'checkpoints',
      'ok',
      count === 0 ? 'none yet' : `${count} checkpoint(s), each restorable (snapshot, digest and code objects checked)`,
    );
    return;
  }
  const newer = damaged.filter((d) => d.newer);
  const unchecked = damaged.filter((d) => !d.newer && d.unchecked);
  const broken = damaged.filter((d) => !d.newer && !d.unchecked);
  const repaired = fix && broken.length > 0 ? repairCheckpoints(store, project.root, broken) : undefined;
  const said = (d: CheckpointDamage) =>
    d.stateRestorable
      ? `${d.id} can restore the .loki/ state only: ${d.problem}`
      : `${d.id} cannot be restored: ${d.problem}`;
  if (repaired && repaired.removed.length + repaired.stateOnly.length + repaired.movedAside.length > 0) {
    const done = [
      repaired.removed.length ? `removed ${repaired.removed.join(', ')} (their state could not be restored)` : '',
      repaired.stateOnly.length
        ? `recorded ${repaired.stateOnly.join(', ')} as state-only (their code snapshot is gone)`
        : '',
      repaired.movedAside.length
        ? `dropped ${repaired.movedAside.map((m) => `${m.id} (its snapshot, tamper evidence, kept in .loki/${m.path})`).join(', ')}`
        : '',
    ].filter(Boolean);
    add('checkpoints', 'ok', `${done.join('; ')}; the audit log keeps what they were (checkpoint.repair)`);
  }
  const fixed = new Set([
    ...(repaired?.removed ?? []),
    ...(repaired?.stateOnly ?? []),
    ...(repaired?.movedAside ?? []).map((m) => m.id),
  ]);
  const notMoved = new Map((repaired?.kept ?? []).map((k) => [k.id, k.reason]));
  const left = broken.filter((d) => !fixed.has(d.id));
  if (left.length > 0)
    add(
      'checkpoints',
      'fail',
      `${named(left.map((d) => (notMoved.has(d.id) ? `${said(d)} (kept as evidence: ${notMoved.get(d.id)})` : said(d))))}. ${
        fix
          ? 'Kept: the interrupted rollback still needs it (see the rollback line), or it is evidence that could not be moved aside'
          : "loki doctor --fix removes those that cannot be restored, records those without their code as state-only and moves a snapshot changed behind loki-mode's back aside as evidence (the audit log keeps what they were); loki checkpoint takes a new one"
      }`,
    );
  if (unchecked.length > 0)
    add(
      'checkpoints',
      'fail',
      `${named(unchecked.map((d) => `${d.id} could not be checked: ${d.problem}`))}. Nothing is known to be wrong with ${unchecked.length === 1 ? 'it' : 'them'} and --fix leaves ${unchecked.length === 1 ? 'it' : 'them'} alone: ${[
        unchecked.some((d) => d.stateRestorable)
          ? `make git runnable here (on PATH, and this user trusted by the repository: git config --global --add safe.directory ${project.root})`
          : '',
        unchecked.some((d) => !d.stateRestorable)
          ? 'let this user read the snapshot, or wait for the process holding it to let go'
          : '',
      ]
        .filter(Boolean)
        .join('; ')}, then run loki doctor again`,
    );
  if (newer.length > 0)
    add(
      'checkpoints',
      'warn',
      `${named(newer.map((d) => `${d.id} ${d.problem.replace(/^it /, '')}`))}: upgrade loki-mode to restore it`,
    );
}

const integrityCheck = (store: Store) =>
  store.db.all<{ integrity_check: string }>('PRAGMA integrity_check').map((r) => r.integrity_check);

/** integrity_check's words for a row that breaks its table's constraints (the file itself is sound). */
const ROW_CONSTRAINT = /^(CHECK constraint failed in |NULL value in |non-\w+ value in )/;

/**
 * integrity_check, the schema version and the size of the write-ahead log; `fix` checkpoints a large WAL.
 * `usable`: the failure is in rows, not in the file, so the record checks can still run.
 */
function inspectDatabase(
  store: Store,
  fix: boolean,
  queryOnly?: Connection,
): { level: Level; detail: string; usable?: boolean } {
  let integrity: string[];
  try {
    integrity = queryOnly
      ? (queryOnly.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[]).map(
          (r) => r.integrity_check,
        )
      : integrityCheck(store);
  } catch (err) {
    return {
      level: 'fail',
      detail: `cannot read .loki/${DB_FILE}: ${message(err)}; move it aside (mv .loki/${DB_FILE} .loki/${DB_FILE}.bad) to start afresh`,
    };
  }
  // The memory search index is derived from the items: damage to it alone is repaired, not a lost database.
  if (integrity.length > 0 && integrity.every((line) => /fts5|memory_fts/.test(line))) {
    if (!fix)
      return {
        level: 'fail',
        detail: `the memory search index is damaged (${integrity[0]}): rebuild it from the items with loki doctor --fix`,
      };
    rebuildMemoryIndex(store);
    integrity = integrityCheck(store);
  }
  // Rows written with the constraints turned off (sqlite3's ignore_check_constraints): the file is sound, the
  // rows are not, and the record checks that follow name each one with what it held.
  if (integrity.length > 0 && integrity.every((line) => ROW_CONSTRAINT.test(line))) {
    return {
      level: 'fail',
      usable: true,
      detail: `rows of .loki/${DB_FILE} break their table's rules (${integrity.slice(0, 3).join('; ')}): they were written outside loki-mode with the checks turned off; the records line names them`,
    };
  }
  if (integrity.length !== 1 || integrity[0] !== 'ok') {
    return {
      level: 'fail',
      detail: `.loki/${DB_FILE} is damaged (${integrity.slice(0, 3).join('; ')}); restore it from a checkpoint (loki rollback) or move it aside to start afresh`,
    };
  }
  let walBytes = 0;
  try {
    walBytes = fs.statSync(`${store.db.file}-wal`).size;
  } catch {
    walBytes = 0;
  }
  let wal = `WAL ${(walBytes / 1024).toFixed(0)} KiB`;
  const made = store.db.all<{ key: string; value: string }>(
    "SELECT key, value FROM meta WHERE key IN ('created_by', 'migrated_by') ORDER BY key",
  );
  const origin = made
    .map((m) => `${m.key === 'created_by' ? 'created by' : 'migrated by'} loki-mode ${m.value}`)
    .join(', ');
  const schema = `schema ${store.db.version()}${origin ? ` (${origin})` : ''}`;
  if (walBytes > WAL_WARN_BYTES) {
    if (!fix)
      return { level: 'warn', detail: `${schema}, integrity ok, ${wal}: run \`loki doctor --fix\` to checkpoint it` };
    store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    wal += ', checkpointed';
  }
  return { level: 'ok', detail: `${schema}, integrity ok, ${wal}` };
}

/**
 * The documents, tasks and memory items that do not match their schema (changed outside loki-mode), each named
 * with what it held: a record no tool can read has vanished from every view, and this is where it is found.
 */
function damagedRecords(store: Store): string[] {
  const types = new Map<string, Schema<unknown>>(DOCUMENT_TYPES.map((t) => [t.kind, t.schema]));
  const problems: string[] = [];
  const check = (what: string, schema: Schema<unknown>, body: string, id?: string) => {
    const r = parseStored(schema, body, id);
    if ('issue' in r)
      problems.push(`${what} in .loki/${DB_FILE} does not match its schema (${r.issue}); it held ${held(body)}`);
  };
  for (const row of store.db.all<{ key: string; kind: string; body: string }>(
    'SELECT key, kind, body FROM docs ORDER BY key',
  )) {
    const schema = types.get(row.kind);
    if (schema) check(`the ${row.kind} record "${row.key}"`, schema, row.body);
    else
      problems.push(
        `the record "${row.key}" in .loki/${DB_FILE} has an unknown kind "${printable(row.kind)}"; it held ${held(row.body)}`,
      );
  }
  for (const row of store.db.all<{ id: string; body: string }>('SELECT id, body FROM tasks ORDER BY seq'))
    check(`task "${row.id}"`, taskSchema, row.body, row.id);
  for (const row of store.db.all<{ id: string; body: string }>('SELECT id, body FROM memory ORDER BY rid'))
    check(`memory item "${row.id}"`, memoryItemSchema(), row.body, row.id);
  return problems;
}

/** The fields that say what a record was about, in the order they are shown. */
const TELLING_FIELDS = ['id', 'runId', 'title', 'label', 'status', 'phase', 'layer', 'spec'];

/** What a damaged record held, in a few words: its telling fields, or the start of its text. */
function held(body: string): string {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return `text that is not JSON: ${clip(body)}`;
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    return `a JSON ${Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value}: ${clip(body)}`;
  const o = value as Record<string, unknown>;
  const shown = TELLING_FIELDS.filter((k) => typeof o[k] === 'string' || typeof o[k] === 'number').map(
    (k) => `${k} ${clip(JSON.stringify(o[k]))}`,
  );
  if (shown.length > 0) return shown.join(', ');
  const keys = Object.keys(o);
  return keys.length ? `an object with ${keys.slice(0, 6).map(printable).join(', ')}` : 'an empty object';
}

const clip = (text: string) => printable(text.length > 60 ? `${text.slice(0, 60)}...` : text);

/** Index every memory item again from its body (the index is contentless: the items are the source). */
function rebuildMemoryIndex(store: Store): void {
  store.mutate(
    () => {
      store.db.run("INSERT INTO memory_fts (memory_fts) VALUES ('delete-all')");
      return store.db.run(
        'INSERT INTO memory_fts (rowid, title, tags, summary, body) SELECT rid, title, tags, summary, body FROM memory_text',
      ).changes;
    },
    (n) => ({ action: 'memory.reindex', data: { items: n, by: 'loki doctor --fix' } }),
  );
}
