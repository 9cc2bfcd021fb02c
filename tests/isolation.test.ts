/**
 * Another local user: `.loki/` is 0700 and its database 0600, so a second account on the machine can neither read
 * the run's state nor take part in a claim (there is no socket or other channel between servers to reach). The
 * test creates that user when it runs as root (as CI does); elsewhere it is skipped, saying why.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, snapshot, structured, taskOnDisk, tempProject, type TempProject } from './helpers.js';

const OTHER = 'loki-other-user';
const isRoot = process.getuid?.() === 0;

/** The uid and gid of the second user, created for this test (root only). */
function otherUser(): { uid: number; gid: number } {
  const exists = spawnSync('id', ['-u', OTHER], { encoding: 'utf8' });
  if (exists.status !== 0) {
    const made = spawnSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', OTHER], {
      encoding: 'utf8',
    });
    if (made.status !== 0) throw new Error(`useradd failed: ${made.stderr}`);
  }
  const uid = Number(spawnSync('id', ['-u', OTHER], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', OTHER], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

/** Run `script` (node -e, one argument) as the other user; it prints a JSON object of what each attempt gave. */
function asOtherUser(user: { uid: number; gid: number }, script: string, arg: string): Record<string, string> {
  const r = spawnSync(process.execPath, ['--no-warnings', '-e', script, arg], {
    uid: user.uid,
    gid: user.gid,
    encoding: 'utf8',
    cwd: os.tmpdir(),
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
}

let p: TempProject | undefined;
afterAll(() => p?.cleanup());

/** Every file and folder under `dir` (itself included). */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return [dir, ...fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f))];
}

/**
 * A run that writes everywhere loki-mode writes: the database, the spec copy, a checkpoint, a verification, a
 * memory, a cross-project solution, the anchor and the held-out set in $LOKI_HOME. The folders above the project
 * and the home are opened to others (as on a shared machine whose home folders are world-readable).
 */
async function fullRun(): Promise<TempProject> {
  const proj = tempProject({
    git: true,
    files: { 'package.json': JSON.stringify({ name: 'x', private: true, scripts: { test: 'node --test' } }) },
  });
  for (let d = proj.root; d !== path.dirname(d); d = path.dirname(d)) fs.chmodSync(d, fs.statSync(d).mode | 0o005);
  const c = await connect(proj);
  try {
    const spec =
      '# Private\n\n- Write a greeting\n  - greeting.txt exists\n  - it says hello\n  - it says goodbye\n  - it ends with a newline\n';
    await c.call('loki_start', { specText: spec });
    fs.writeFileSync(path.join(proj.root, 'greeting.txt'), 'hello\n');
    await c.call('loki_checkpoint_create', { label: 'private one' });
    await c.call('loki_verify');
    await c.call('loki_memory_record', { layer: 'episode', title: 'wrote a greeting', outcome: 'success' });
    await c.call('loki_learn', { category: 'greetings', title: 'Greetings end with a newline' });
  } finally {
    await c.close();
  }
  return proj;
}

describe('what loki-mode writes is private to the user', () => {
  it('every folder and file under .loki/ and $LOKI_HOME has no group or other permission', async () => {
    const proj = await fullRun();
    try {
      const open = [...walk(path.join(proj.root, '.loki')), ...walk(proj.home)]
        .map((f) => [f, fs.statSync(f).mode & 0o777] as const)
        .filter(([, mode]) => (mode & 0o077) !== 0)
        .map(([f, mode]) => `${path.relative(path.dirname(proj.root), f)} ${mode.toString(8)}`);
      expect(open).toEqual([]);
      expect(fs.existsSync(path.join(proj.home, 'held-out'))).toBe(true);
      expect(fs.existsSync(path.join(proj.home, 'solutions'))).toBe(true);
    } finally {
      proj.cleanup();
    }
  });

  it('narrows a $LOKI_HOME an older version or a wide umask left open', async () => {
    const proj = tempProject();
    fs.chmodSync(proj.home, 0o755);
    const c = await connect(proj);
    await c.call('loki_start', { specText: '# Home\n' });
    await c.close();
    expect(fs.statSync(proj.home).mode & 0o777).toBe(0o700);
    proj.cleanup();
  });
});

describe.skipIf(!isRoot)('a second local user (created by the test; needs root)', () => {
  it('can neither read .loki/ nor affect a claim', async () => {
    const user = otherUser();
    p = tempProject();
    // The other user may walk to the project (as on a shared machine whose home folders are world-readable).
    for (let d = p.root; d !== path.dirname(d); d = path.dirname(d)) fs.chmodSync(d, fs.statSync(d).mode | 0o005);
    const c = await connect(p);
    await c.call('loki_start', { specText: '# Shared machine\n' });
    structured(await c.call('loki_task_add', { tasks: [{ id: 'mine', title: 'only for me', phase: 'BOOTSTRAP' }] }));
    const before = snapshot(p.root);

    // Everything the other user might try, as that user: read the files, open the database and claim, write a
    // marker. Each attempt prints what happened.
    const script = `
      const fs = require('node:fs');
      const out = {};
      const tryIt = (name, fn) => { try { fn(); out[name] = 'allowed'; } catch (e) { out[name] = e.code || e.message; } };
      const loki = process.argv[1] + '/.loki';
      tryIt('list', () => fs.readdirSync(loki));
      tryIt('read', () => fs.readFileSync(loki + '/loki.db'));
      tryIt('claim', () => {
        const { DatabaseSync } = require('node:sqlite');
        const db = new DatabaseSync(loki + '/loki.db');
        db.exec("UPDATE tasks SET body = json_set(body, '$.status', 'in-progress') WHERE id = 'mine'");
      });
      tryIt('pause', () => fs.writeFileSync(loki + '/PAUSE', 'x'));
      process.stdout.write(JSON.stringify(out));
    `;
    const result = asOtherUser(user, script, p.root);
    expect(result.list).toBe('EACCES');
    expect(result.read).toBe('EACCES');
    expect(result.claim).not.toBe('allowed');
    expect(result.pause).toBe('EACCES');

    // Nothing changed, and the owner still claims its task as usual.
    expect(snapshot(p.root)).toEqual(before);
    const claimed = structured<{ task: { id: string } | null }>(
      await c.call('loki_task_claim', { agent: 'me', taskId: 'mine' }),
    );
    expect(claimed.task?.id).toBe('mine');
    expect(taskOnDisk<{ lease: { agent: string } }>(p.root, 'mine')?.lease.agent).toBe('me');
    await c.close();
  });

  it('can read nothing loki-mode wrote, under .loki/ or $LOKI_HOME, even by a full path', async () => {
    const user = otherUser();
    const proj = await fullRun();
    try {
      const paths = [...walk(path.join(proj.root, '.loki')), ...walk(proj.home)];
      expect(paths.length).toBeGreaterThan(10);
      const script = `
        const fs = require('node:fs');
        const out = {};
        for (const p of JSON.parse(process.argv[1])) {
          try { fs.statSync(p).isDirectory() ? fs.readdirSync(p) : fs.readFileSync(p); out[p] = 'allowed'; }
          catch (e) { out[p] = e.code || e.message; }
        }
        process.stdout.write(JSON.stringify(out));
      `;
      const result = asOtherUser(user, script, JSON.stringify(paths));
      expect(Object.entries(result).filter(([, v]) => v === 'allowed')).toEqual([]);
    } finally {
      proj.cleanup();
    }
  });

  it('finds the home folder private too: anchors and the compile cache are 0700/0600', async () => {
    const proj = tempProject();
    const c = await connect(proj);
    await c.call('loki_start', { specText: '# Home\n' });
    await c.close();
    const anchors = path.join(proj.home, 'anchors');
    expect(fs.statSync(anchors).mode & 0o077).toBe(0);
    for (const f of fs.readdirSync(anchors)) expect(fs.statSync(path.join(anchors, f)).mode & 0o077, f).toBe(0);
    proj.cleanup();
  });
});
