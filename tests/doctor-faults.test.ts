/**
 * `loki doctor` against damaged state, each fault made by real means: rows rewritten with node:sqlite (as the
 * sqlite3 shell would, checks off where needed), files replaced with fs, a rollback SIGKILLed half way
 * (LOKI_FAULT), a full disk (a tiny tmpfs) and a read-only one (a read-only bind mount) in a private mount
 * namespace, and a `.loki/` this user may not write (another user's, or a database file of mode 000). Each time
 * the spawned doctor names the problem and exits 1; where `--fix` can mend it, it does, and the doctor passes
 * again. The full, read-only and forbidden disks also reach `loki pause` and the MCP tools as what they are: one
 * line with the path and the fix, never a stack trace or an "unexpected error".
 *
 * Not every machine lets a test make every fault. The full and read-only disks need a private mount namespace
 * (unshare, as root or through a user namespace); the forbidden folder, when the tests run as root (whom the
 * permissions do not stop), needs the unprivileged user `nobody` to be able to run Node from where it is. A case
 * whose means are missing is skipped, and the skip says why.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIST,
  auditLines,
  connect,
  dbRows,
  docOnDisk,
  git,
  openDb,
  snapshot,
  tempProject,
  type TempProject,
} from './helpers.js';

const CLI = path.join(DIST, 'loki.js');
const SERVER = path.join(DIST, 'loki-mcp.js');

let p: TempProject | undefined;
afterEach(() => {
  if (p) {
    // A test may have handed the project to another user or left it read-only for them.
    spawnSync('chmod', ['-R', 'u+rwX', path.dirname(p.root)]);
    p.cleanup();
  }
  p = undefined;
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

function loki(args: string[], opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Run {
  const r = spawnSync(process.execPath, [CLI, '--project-dir', p!.root, ...args], {
    env: { ...p!.env, ...opts.env },
    encoding: 'utf8',
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
  });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

/** A git project with a run of two tasks and a manual checkpoint (besides the run start's); returns its id. */
async function projectWithRun(): Promise<string> {
  p = tempProject({ git: true, files: { 'spec.md': '# Shop\n- add the cart\n- add the checkout\n' } });
  const c = await connect(p);
  await c.call('loki_start', { spec: 'spec.md' });
  await c.close();
  const made = loki(['checkpoint', 'base', '--json']);
  expect(made.code, made.err).toBe(0);
  const id = (JSON.parse(made.out) as { id: string }).id;
  const healthy = loki(['doctor']);
  expect(healthy.code, healthy.out).toBe(0);
  return id;
}

/** Change rows as a person with the sqlite3 shell would; `unchecked`: with the CHECK constraints turned off. */
function sql(statement: string, unchecked = false): void {
  const db = openDb(p!.root, false);
  try {
    if (unchecked) db.exec('PRAGMA ignore_check_constraints = ON');
    db.exec(statement);
  } finally {
    db.close();
  }
}

const lokiDir = () => path.join(p!.root, '.loki');

/** The doctor's line for a check, at a level (ok, warn, FAIL). */
const line = (level: string, name: string, detail: RegExp) =>
  new RegExp(`^${level}\\s+${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+.*${detail.source}`, 'm');

/** One line naming the cause and the fix: no stack frames, no "unexpected error". */
function oneLine(r: Run, cause: RegExp): void {
  expect(r.code, `${r.out}${r.err}`).toBe(1);
  expect(r.err).toMatch(cause);
  expect(r.err).not.toMatch(/^\s+at /m);
  expect(r.err).not.toMatch(/unexpected error/i);
  expect(r.err.trim().split('\n')).toHaveLength(1);
}

describe('loki doctor without --fix', () => {
  it('changes nothing on disk: no .loki/.gitignore written, no mode changed, no row', async () => {
    await projectWithRun();
    fs.rmSync(path.join(lokiDir(), '.gitignore'));
    fs.chmodSync(lokiDir(), 0o755);
    fs.chmodSync(path.join(lokiDir(), 'loki.db'), 0o644);
    const modes = () =>
      [lokiDir(), path.join(lokiDir(), 'loki.db')].map((f) => (fs.statSync(f).mode & 0o777).toString(8));
    const before = { tree: snapshot(p!.root), modes: modes() };
    const r = loki(['doctor']);
    expect(r.code, r.out).toBe(0);
    expect({ tree: snapshot(p!.root), modes: modes() }).toEqual(before);
    expect(before.tree.has('.loki/.gitignore')).toBe(false);
    // --fix may write: it puts them right.
    expect(loki(['doctor', '--fix']).code).toBe(0);
    expect(fs.existsSync(path.join(lokiDir(), '.gitignore'))).toBe(true);
  });
});

describe('loki doctor names damaged records, with what they held', () => {
  it('a task row whose body no longer matches its schema (the task is gone from every view)', async () => {
    await projectWithRun();
    sql(`UPDATE tasks SET body = json_set(body, '$.priority', 'urgent') WHERE id = 't1'`);
    // Every view refuses it, so it would vanish; the doctor is where it is found.
    expect(loki(['tasks']).code).toBe(1);
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'records',
        /task "t1" in \.loki\/loki\.db does not match its schema \(priority: .*\); it held id "t1", .*title "add the cart", status "pending"/,
      ),
    );
    expect(r.out).toMatch(/loki rollback list, then loki rollback to ID/);
    expect(r.out).not.toMatch(/All checks passed/);
  });

  it('the run record holding text that is not JSON (written with the checks turned off)', async () => {
    await projectWithRun();
    sql(`UPDATE docs SET body = 'phase: DEVELOPMENT, by hand' WHERE key = 'run'`, true);
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'database',
        /rows of \.loki\/loki\.db break their table's rules \(CHECK constraint failed in docs\)/,
      ),
    );
    expect(r.out).toMatch(
      line(
        'FAIL',
        'records',
        /the run record "run" in \.loki\/loki\.db does not match its schema \(not valid JSON\); it held text that is not JSON: phase: DEVELOPMENT, by hand/,
      ),
    );
  });
});

describe('loki doctor names a store that is not one', () => {
  it('.loki/loki.db replaced by a directory', async () => {
    await projectWithRun();
    for (const f of ['loki.db', 'loki.db-wal', 'loki.db-shm']) fs.rmSync(path.join(lokiDir(), f), { force: true });
    fs.mkdirSync(path.join(lokiDir(), 'loki.db'));
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'database',
        /\.loki\/loki\.db is not a regular file; move it aside \(mv \.loki\/loki\.db \.loki\/loki\.db\.bad\)/,
      ),
    );
  });

  it('.loki/loki.db replaced by bytes that are not a database', async () => {
    await projectWithRun();
    for (const f of ['loki.db-wal', 'loki.db-shm']) fs.rmSync(path.join(lokiDir(), f), { force: true });
    fs.writeFileSync(path.join(lokiDir(), 'loki.db'), Buffer.alloc(64 * 1024, 0x5a));
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(line('FAIL', 'database', /file is not a database\. Move it aside/));
  });

  it('.loki itself a file', async () => {
    await projectWithRun();
    fs.rmSync(lokiDir(), { recursive: true });
    fs.writeFileSync(lokiDir(), 'not a folder');
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(line('FAIL', '.loki/', /is a file, not a directory; loki-mode refuses it: move it aside/));
  });
});

describe('loki doctor names damaged checkpoints, and --fix removes or narrows them', () => {
  it('a checkpoint whose state snapshot is missing: named; --fix removes it (audited)', async () => {
    const id = await projectWithRun();
    fs.rmSync(path.join(lokiDir(), 'checkpoints', id, 'loki.db'));
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'checkpoints',
        new RegExp(
          `${id} cannot be restored: its state snapshot \\.loki/checkpoints/${id}/loki\\.db is missing\\. loki doctor --fix removes`,
        ),
      ),
    );
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(line('ok', 'checkpoints', new RegExp(`removed ${id}`)));
    expect(auditLines(p!.root).at(-1)).toMatchObject({
      action: 'checkpoint.repair',
      data: { removed: [{ id, problem: expect.stringMatching(/is missing/) }] },
    });
    expect(loki(['rollback', 'list']).out).not.toMatch(new RegExp(`\\b${id}\\b`));
    expect(git(p!.root, 'for-each-ref', `refs/loki/checkpoints/${id}`)).toBe('');
    expect(loki(['doctor']).code).toBe(0);
  });

  it('a checkpoint whose snapshot no longer matches its digest (a row changed in the copy)', async () => {
    const id = await projectWithRun();
    const copy = new DatabaseSync(path.join(lokiDir(), 'checkpoints', id, 'loki.db'));
    copy.exec(`UPDATE tasks SET body = json_set(body, '$.title', 'forged') WHERE id = 't1'`);
    copy.close();
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'checkpoints',
        new RegExp(`${id} cannot be restored: its state snapshot does not match the digest in its record`),
      ),
    );
    // What rollback itself says of it; refused, it changes nothing, git's object store included (the undo of
    // the work not yet committed is taken only once the target is known to be sound).
    fs.writeFileSync(path.join(p!.root, 'uncommitted.txt'), `work in progress ${Date.now()}\n`);
    const before = snapshot(p!.root);
    const refused = loki(['rollback', 'to', id, '--code']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/is damaged \(its state snapshot does not match the digest/);
    expect(snapshot(p!.root)).toEqual(before);
    // Tamper evidence: dropped from the catalog, its snapshot kept under another name, never deleted.
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(
      line('ok', 'checkpoints', new RegExp(`dropped ${id} \\(.*kept in \\.loki/checkpoints/${id}\\.damaged\\)`)),
    );
    expect(fs.existsSync(path.join(lokiDir(), 'checkpoints', id))).toBe(false);
    const kept = new DatabaseSync(path.join(lokiDir(), 'checkpoints', `${id}.damaged`, 'loki.db'), { readOnly: true });
    expect(kept.prepare(`SELECT body ->> '$.title' AS title FROM tasks WHERE id = 't1'`).get()).toEqual({
      title: 'forged',
    });
    kept.close();
    expect(auditLines(p!.root).at(-1)).toMatchObject({
      action: 'checkpoint.repair',
      data: { removed: [{ id, keptAt: `.loki/checkpoints/${id}.damaged` }] },
    });
    expect(loki(['rollback', 'list']).out).not.toMatch(new RegExp(`\\b${id}\\b`));
    // Nothing sweeps it away later: the next checkpoint leaves it where it is.
    expect(loki(['checkpoint', 'after']).code).toBe(0);
    expect(fs.existsSync(path.join(lokiDir(), 'checkpoints', `${id}.damaged`, 'loki.db'))).toBe(true);
  });

  it('a snapshot that cannot be opened just now (locked by another process): named with its code; --fix keeps it', async () => {
    const id = await projectWithRun();
    const file = path.join(lokiDir(), 'checkpoints', id, 'loki.db');
    const lock = new DatabaseSync(file);
    lock.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE');
    try {
      const r = loki(['doctor']);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(
        line(
          'FAIL',
          'checkpoints',
          new RegExp(
            `${id} could not be checked: its state snapshot could not be opened: .*stayed locked by another process.*--fix leaves it alone: let this user read the snapshot`,
          ),
        ),
      );
      const fixed = loki(['doctor', '--fix']);
      expect(fixed.code).toBe(1);
      expect(fixed.out).not.toMatch(/removed|state-only|dropped/);
    } finally {
      lock.close();
    }
    expect(fs.existsSync(file)).toBe(true);
    expect(loki(['doctor']).code).toBe(0);
  });

  it('git that cannot run (not on PATH, or refusing a repository it does not trust): named with its error; --fix leaves every checkpoint as it is', async () => {
    const id = await projectWithRun();
    const rows = () => dbRows(p!.root, 'SELECT seq, body FROM checkpoints ORDER BY seq');
    const before = rows();
    const refs = git(p!.root, 'for-each-ref', 'refs/loki/checkpoints');
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ PATH: path.join(path.dirname(p!.root), 'no-git-here') }, /git failed \(did not run\): spawnSync git ENOENT/],
      [{ GIT_TEST_ASSUME_DIFFERENT_OWNER: '1' }, /git failed \(exit 128\): fatal: detected dubious ownership/],
    ];
    for (const [env, said] of cases) {
      const r = loki(['doctor'], { env });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(
        line(
          'FAIL',
          'checkpoints',
          new RegExp(`${id} could not be checked: cannot check git ref refs/loki/checkpoints/${id}: ${said.source}`),
        ),
      );
      const fixed = loki(['doctor', '--fix'], { env });
      expect(fixed.code, fixed.out).toBe(1);
      expect(fixed.out).not.toMatch(/state-only|removed/);
      expect(rows()).toEqual(before);
      expect(git(p!.root, 'for-each-ref', 'refs/loki/checkpoints')).toBe(refs);
    }
    expect(loki(['doctor']).code).toBe(0);
  });

  it('a checkpoint whose record is damaged', async () => {
    const id = await projectWithRun();
    sql(`UPDATE checkpoints SET body = json_set(body, '$.state.digest', 'edited') WHERE seq = ${id.slice(3)}`);
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line('FAIL', 'checkpoints', new RegExp(`${id} cannot be restored: its record is damaged \\(state\\.digest: `)),
    );
  });

  it('a checkpoint whose code snapshot is gone: named; --fix records it as the state-only checkpoint it still is', async () => {
    const id = await projectWithRun();
    git(p!.root, 'update-ref', '-d', `refs/loki/checkpoints/${id}`);
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'checkpoints',
        new RegExp(`${id} can restore the \\.loki/ state only: git ref refs/loki/checkpoints/${id} is missing`),
      ),
    );
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(new RegExp(`recorded ${id} as state-only`));
    expect(loki(['rollback', 'to', id, '--code']).err).toMatch(/has no code snapshot \(code snapshot lost: git ref/);
    expect(loki(['rollback', 'to', id]).code).toBe(0);
  });
});

describe('an interrupted rollback', () => {
  it('finished by loki doctor --fix keeps the files changed after the interruption, and says how to get them back', async () => {
    const id = await projectWithRun();
    fs.writeFileSync(path.join(p!.root, 'later.txt'), 'written after the checkpoint\n');
    const killed = loki(['rollback', 'to', id, '--code'], { env: { LOKI_FAULT: 'rollback-journal-written' } });
    expect(killed.signal).toBe('SIGKILL');
    // Work done after the interruption, which the undo (the pre-rollback checkpoint) does not hold.
    fs.writeFileSync(path.join(p!.root, 'newer.txt'), 'written after the interruption\n');
    fs.writeFileSync(path.join(p!.root, 'spec.md'), '# Shop, edited after the interruption\n');
    const edited = snapshot(p!.root);
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    const back = /get them back with loki rollback to (cp-\d+) --code/.exec(fixed.out);
    expect(back, fixed.out).not.toBeNull();
    expect(fs.existsSync(path.join(p!.root, 'newer.txt'))).toBe(false);
    const undo = loki(['rollback', 'to', back![1]!, '--code']);
    expect(undo.code, undo.err).toBe(0);
    const now = snapshot(p!.root);
    for (const [file, bytes] of edited) if (!file.startsWith('.loki/')) expect(now.get(file), file).toBe(bytes);
    expect(fs.readFileSync(path.join(p!.root, 'newer.txt'), 'utf8')).toBe('written after the interruption\n');
  });

  it('is named by loki doctor (exit 1) and finished by loki doctor --fix', async () => {
    const id = await projectWithRun();
    const spec = fs.readFileSync(path.join(p!.root, 'spec.md'), 'utf8');
    fs.writeFileSync(path.join(p!.root, 'spec.md'), '# Shop, changed after the checkpoint\n');
    fs.writeFileSync(path.join(p!.root, 'later.txt'), 'written after the checkpoint\n');
    // Killed once its state transaction has committed, before a file is touched.
    const killed = loki(['rollback', 'to', id, '--code'], { env: { LOKI_FAULT: 'rollback-journal-written' } });
    expect(killed.signal).toBe('SIGKILL');
    expect(docOnDisk(p!.root, 'rollback')).toMatchObject({ target: id });
    expect(fs.existsSync(path.join(p!.root, 'later.txt'))).toBe(true);

    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      line(
        'FAIL',
        'rollback',
        new RegExp(
          `the rollback to ${id} .* was interrupted: the \\.loki/ state is restored, the files are not\\. Finish it with loki doctor --fix`,
        ),
      ),
    );
    // The doctor alone changed nothing.
    expect(fs.existsSync(path.join(p!.root, 'later.txt'))).toBe(true);
    const untouched = snapshot(p!.root);
    expect(loki(['doctor']).code).toBe(1);
    expect(snapshot(p!.root)).toEqual(untouched);

    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fixed.out).toMatch(
      line(
        'ok',
        'rollback',
        new RegExp(`finished the interrupted rollback to ${id}: files restored \\(0 added, 1 modified, 1 removed\\)`),
      ),
    );
    expect(fs.readFileSync(path.join(p!.root, 'spec.md'), 'utf8')).toBe(spec);
    expect(fs.existsSync(path.join(p!.root, 'later.txt'))).toBe(false);
    expect(docOnDisk(p!.root, 'rollback')).toBeUndefined();
    expect(auditLines(p!.root).at(-1)).toMatchObject({
      action: 'checkpoint.rollback-files',
      target: id,
      data: { resumed: true },
    });
    expect(loki(['doctor']).code).toBe(0);
  });
});

// ---- disks: full, read-only, not ours --------------------------------------------------------------------

/**
 * How this machine lets a test mount a file system of its own: unshare with a private mount namespace, through a
 * user namespace (-r, any user where they are allowed) or directly (as root). Undefined when neither works.
 */
const UNSHARE: string[] | undefined = (() => {
  const probe = 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc';
  for (const flags of [['-rm'], ['-m']]) {
    const r = spawnSync('unshare', [...flags, 'sh', '-c', probe], { encoding: 'utf8' });
    if (r.status === 0) return flags;
  }
  return undefined;
})();
const NO_NAMESPACE =
  'skipped: this machine lets no test mount a tmpfs or a read-only bind (unshare -rm and unshare -m both refused), so a full or read-only disk cannot be made for real';

/** Run `script` (sh) in a private mount namespace; its positional parameters are `args`. */
function inNamespace(script: string, args: string[]): { status: number | null; out: string; err: string } {
  const r = spawnSync('unshare', [...UNSHARE!, 'sh', '-c', script, 'sh', ...args], {
    env: p!.env,
    encoding: 'utf8',
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** What the doctor and `loki pause` said, each run inside the namespace the script sets up (saved under `out`). */
function results(out: string): { doctor: Run; pause: Run } {
  const read = (name: string) => fs.readFileSync(path.join(out, name), 'utf8');
  const run = (name: string): Run => ({
    code: Number(read(`${name}.code`).trim()),
    signal: null,
    out: read(`${name}.out`),
    err: read(`${name}.err`),
  });
  return { doctor: run('doctor'), pause: run('pause') };
}

/** The doctor and `loki pause` on the project at "$1", as `sh` lines writing into "$2". */
const RUN_BOTH = `
node="$3"; cli="$4"
"$node" "$cli" --project-dir "$1" doctor > "$2/doctor.out" 2> "$2/doctor.err"; echo $? > "$2/doctor.code"
"$node" "$cli" --project-dir "$1" pause > "$2/pause.out" 2> "$2/pause.err"; echo $? > "$2/pause.code"
`;

describe.skipIf(!UNSHARE)(`a full or read-only disk ${UNSHARE ? '' : `(${NO_NAMESPACE})`}`, () => {
  it('a full disk (a tmpfs filled up): the doctor names it, and loki pause says it in one line with the fix', async () => {
    await projectWithRun();
    const base = path.dirname(p!.root);
    const disk = path.join(base, 'disk');
    const out = path.join(base, 'out');
    fs.mkdirSync(disk);
    fs.mkdirSync(out);
    // The project is copied onto a small tmpfs, which is then filled to the last block.
    const r = inNamespace(
      `set -e
mount -t tmpfs -o size=8m tmpfs "$5"
cp -a "$6" "$5/project"
dd if=/dev/zero of="$5/fill" bs=64k 2>/dev/null || true
dd if=/dev/zero of="$5/fill-tail" bs=512 2>/dev/null || true
set +e
${RUN_BOTH}`,
      [path.join(disk, 'project'), out, process.execPath, CLI, disk, p!.root],
    );
    expect(r.status, r.err).toBe(0);
    const { doctor, pause } = results(out);
    expect(doctor.code, doctor.out + doctor.err).toBe(1);
    expect(doctor.out).toMatch(
      line('FAIL', '.loki/', /no space left on the disk holding .*\/project\/\.loki \(ENOSPC\): free some space there/),
    );
    oneLine(pause, /^loki: .*no space left on the disk holding .*\(ENOSPC\): free some space there, then try again$/m);
  });

  it('a read-only file system: the doctor names it, and loki pause and an MCP tool say it with the fix', async () => {
    await projectWithRun();
    const out = path.join(path.dirname(p!.root), 'out');
    fs.mkdirSync(out);
    const readOnly = `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"`;
    const r = inNamespace(`set -e\n${readOnly}\nset +e\n${RUN_BOTH}`, [p!.root, out, process.execPath, CLI]);
    expect(r.status, r.err).toBe(0);
    const { doctor, pause } = results(out);
    expect(doctor.code, doctor.out + doctor.err).toBe(1);
    expect(doctor.out).toMatch(
      line('FAIL', '.loki/', /is on a read-only file system \(EROFS\): remount it read-write/),
    );
    oneLine(
      pause,
      /^loki: .*is on a read-only file system \(EROFS\): remount it read-write, or work on a copy of the project on a writable disk$/m,
    );
    expect(fs.existsSync(path.join(lokiDir(), 'PAUSE'))).toBe(false);

    // The server on the same read-only disk: a tool's error is the cause and its fix, not "unexpected error".
    const answer = await toolCallInNamespace(readOnly, 'loki_checkpoint_create', { label: 'on a read-only disk' });
    expect(answer.isError).toBe(true);
    expect(answer.text).toMatch(/^loki_checkpoint_create: .*read-only file system \(EROFS\): remount it read-write/);
    expect(answer.text).not.toMatch(/unexpected error/);
  });
});

/** Start the built server in a namespace set up by `setup` (sh, "$1" is the project) and make one tool call. */
async function toolCallInNamespace(
  setup: string,
  tool: string,
  args: Record<string, unknown>,
): Promise<{ isError: boolean; text: string }> {
  const child = spawn(
    'unshare',
    [
      ...UNSHARE!,
      'sh',
      '-c',
      `set -e\n${setup}\nexec "$2" "$3" --project-dir "$1"`,
      'sh',
      p!.root,
      process.execPath,
      SERVER,
    ],
    { env: p!.env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let buffer = '';
  const answer = new Promise<{ isError: boolean; text: string }>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString('utf8');
      for (const l of buffer.split('\n').slice(0, -1)) {
        const m = JSON.parse(l) as { id?: number; result?: { isError?: boolean; content: { text: string }[] } };
        if (m.id === 2) resolve({ isError: m.result?.isError ?? false, text: m.result?.content[0]?.text ?? '' });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before answering`)));
  });
  const send = (o: unknown) => child.stdin.write(`${JSON.stringify(o)}\n`);
  send({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'faults', version: '1' } },
  });
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: args } });
  try {
    return await answer;
  } finally {
    child.stdin.end();
  }
}

/**
 * A `.loki/` this user may not write. As root the permission bits stop nobody, so the CLI runs as `nobody` on a
 * project whose `.loki/` stays root's (0700), as after a `sudo loki ...`; as anyone else, the database file is
 * made mode 000.
 */
const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
const nobodyCanRun = (): boolean =>
  spawnSync(process.execPath, [CLI, '--version'], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' }).status === 0;
const NOBODY_SKIP = IS_ROOT && !nobodyCanRun();

describe.skipIf(NOBODY_SKIP)(
  `a .loki/ this user may not write ${NOBODY_SKIP ? '(skipped: running as root, and the user nobody cannot run this Node or read the build from where they are)' : ''}`,
  () => {
    it('the doctor names it, and loki pause says it in one line with the fix', async () => {
      await projectWithRun();
      let as: { uid?: number; gid?: number } = {};
      if (IS_ROOT) {
        // The project and LOKI_HOME become nobody's; .loki/ stays root's.
        const base = path.dirname(p!.root);
        fs.chmodSync(base, 0o755);
        fs.chownSync(p!.root, NOBODY, NOBODY);
        spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, p!.home]);
        as = { uid: NOBODY, gid: NOBODY };
      } else {
        fs.chmodSync(path.join(lokiDir(), 'loki.db'), 0o000);
      }
      const doctor = loki(['doctor'], as);
      expect(doctor.code, doctor.out + doctor.err).toBe(1);
      expect(doctor.out).toMatch(
        /^FAIL\s+(\.loki\/|database)\s+.*permission denied on .*\.loki.* \(EACCES\): make it writable by you/m,
      );
      const pause = loki(['pause'], as);
      oneLine(
        pause,
        /^loki: .*permission denied on .*\.loki.* \(EACCES\): make it writable by you \(chmod u\+rwX\), or if another user owns it/m,
      );
      expect(dbRows(p!.root, "SELECT 1 FROM audit WHERE action = 'signal.pause'")).toEqual([]);
    });
  },
);
