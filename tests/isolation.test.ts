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

let p: TempProject | undefined;
afterAll(() => p?.cleanup());

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
    const r = spawnSync(process.execPath, ['--no-warnings', '-e', script, p.root], {
      uid: user.uid,
      gid: user.gid,
      encoding: 'utf8',
      cwd: os.tmpdir(),
    });
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as Record<string, string>;
    expect(result.list).toBe('EACCES');
    expect(result.read).toBe('EACCES');
    expect(result.claim).not.toBe('allowed');
    expect(result.pause).toBe('EACCES');

    // Nothing changed, and the owner still claims its task as usual.
    expect(snapshot(p.root)).toEqual(before);
    const claimed = structured<{ task: { id: string } | null }>(await c.call('loki_task_claim', { agent: 'me' }));
    expect(claimed.task?.id).toBe('mine');
    expect(taskOnDisk<{ lease: { agent: string } }>(p.root, 'mine')?.lease.agent).toBe('me');
    await c.close();
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
