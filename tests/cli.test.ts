/** The `loki` command, spawned from dist: output, exit codes, and what it does to .loki/. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HELP } from '../mcp-server/src/cli/main.js';
import { DIST, auditLines, connect, openDb, tempProject, type TempProject } from './helpers.js';

const CLI = path.join(DIST, 'loki.js');

let p: TempProject;
afterEach(() => p?.cleanup());

function loki(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? p.root,
    env: { ...p.env, ...opts.env },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function startRun(extra: NodeJS.ProcessEnv = {}) {
  const c = await connect(p, extra);
  await c.call('loki_start', { specText: '# Demo app\n- a feature\n' });
  await c.call('loki_status');
  await c.close();
}

describe('loki', () => {
  it('prints help and version, and exits 2 on usage errors', () => {
    p = tempProject();
    expect(loki(['--help'])).toMatchObject({ code: 0, out: HELP });
    expect(loki(['--version']).out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(loki([])).toMatchObject({ code: 2 });
    const unknown = loki(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command "frobnicate".*loki --help/);
    expect(loki(['status', '--colour']).code).toBe(2);
    expect(loki(['audit']).err).toMatch(/usage: loki audit verify/);
  });

  it('status shows the run for people and as JSON, without counting a turn', async () => {
    p = tempProject();
    await startRun();
    const human = loki(['status']);
    expect(human.code).toBe(0);
    // BOOTSTRAP had nothing to do and passed at the start.
    expect(human.out).toMatch(/Phases\s+BOOTSTRAP > \[DEVELOPMENT\] > QA/);
    expect(human.out).toMatch(/Turns\s+1 of 1000/);
    expect(human.out).toMatch(/Next\s+loki_task_claim \{\} -- phase DEVELOPMENT/);
    const json = JSON.parse(loki(['status', '--json']).out);
    expect(json.run).toMatchObject({ phase: 'DEVELOPMENT', tier: 'simple', iteration: 1 });
    expect(json.sessions[0]).toMatchObject({ status: 'stopped', liveness: 'stopped' });
    expect(JSON.parse(loki(['status', '--json']).out).run.iteration).toBe(1);
  });

  it('status works in a project with no .loki/ and creates nothing', () => {
    p = tempProject();
    expect(loki(['status']).out).toMatch(/Run\s+none/);
    expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
  });

  it('pause, resume and stop write and clear the signal files, audited', async () => {
    p = tempProject();
    await startRun();
    expect(loki(['pause']).out).toMatch(/Paused/);
    expect(fs.existsSync(path.join(p.root, '.loki/PAUSE'))).toBe(true);
    expect(loki(['pause']).out).toMatch(/Already paused/);
    expect(loki(['stop']).out).toMatch(/Stop requested/);
    expect(JSON.parse(loki(['status', '--json']).out).signals).toMatchObject({ pause: true, stop: true });
    expect(loki(['resume']).out).toMatch(/removed \.loki\/PAUSE and \.loki\/STOP/);
    expect(loki(['resume']).out).toMatch(/Nothing to resume/);
    expect(
      auditLines(p.root)
        .map((e) => e.action)
        .filter((a) => String(a).startsWith('signal.')),
    ).toEqual(['signal.pause', 'signal.stop', 'signal.resume']);
  });

  it('audit verify passes on an intact log and fails, naming the first bad entry, on an edit', async () => {
    p = tempProject();
    await startRun();
    expect(loki(['audit', 'verify'])).toMatchObject({ code: 0 });
    const db = openDb(p.root, false);
    db.prepare("UPDATE audit SET action = action || 'x' WHERE seq = 1").run();
    db.close();
    const r = loki(['audit', 'verify']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/BROKEN at entry 1/);
    expect(JSON.parse(loki(['audit', 'verify', '--json']).out)).toMatchObject({ ok: false, firstBreak: { index: 1 } });
  });

  it('audit verify catches a truncated log against the external anchor', async () => {
    p = tempProject();
    await startRun();
    const db = openDb(p.root, false);
    db.prepare('DELETE FROM audit WHERE seq >= 1').run();
    db.close();
    const r = loki(['audit', 'verify']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/truncated/);
  });

  it('config lists every setting with its source, and fails on a bad config', () => {
    p = tempProject();
    fs.mkdirSync(path.join(p.root, '.loki'));
    fs.writeFileSync(path.join(p.root, '.loki/config.yaml'), 'council:\n  size: 5\n  threshold: 4\n');
    const r = loki(['config'], { env: { LOKI_MAX_RETRIES: '3' } });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/council\.size\s+5\s+\.loki\/config\.yaml/);
    expect(r.out).toMatch(/limits\.maxRetries\s+3\s+env LOKI_MAX_RETRIES/);
    expect(r.out).toMatch(/council\.enabled\s+true\s+default/);
    const bad = loki(['config', '--json'], { env: { LOKI_COUNCIL_SIZE: 'x' } });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).problems[0]).toMatch(/LOKI_COUNCIL_SIZE/);
  });

  it('doctor checks the database: schema, integrity and WAL on a healthy project; names the fix for a damaged file or record', async () => {
    p = tempProject();
    await startRun();
    const ok = loki(['doctor']);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toMatch(/ok\s+database\s+schema \d+ \(created by loki-mode [\d.]+\), integrity ok, WAL \d+ KiB/);
    // A record changed outside loki-mode.
    const db = openDb(p.root, false);
    db.prepare(`UPDATE docs SET body = json_set(body, '$.tier', 'huge') WHERE key = 'run'`).run();
    db.close();
    const sick = loki(['doctor']);
    expect(sick.code).toBe(1);
    expect(sick.out).toMatch(/FAIL\s+records\s+the run record "run" in \.loki\/loki\.db does not match its schema/);
    // A file that is not a database at all.
    fs.rmSync(path.join(p.root, '.loki/loki.db-wal'), { force: true });
    fs.rmSync(path.join(p.root, '.loki/loki.db-shm'), { force: true });
    fs.writeFileSync(path.join(p.root, '.loki/loki.db'), 'this is not a database, it only has its name'.repeat(200));
    const broken = loki(['doctor']);
    expect(broken.code).toBe(1);
    expect(broken.out).toMatch(/FAIL\s+database\s+.*mv \.loki\/loki\.db \.loki\/loki\.db\.bad/);
    expect(broken.out).not.toMatch(/All checks passed/);
  });

  it('doctor finds a damaged memory search index, and --fix rebuilds it from the items (audited)', async () => {
    p = tempProject();
    const c = await connect(p);
    await c.call('loki_start', { specText: '# Memory\n' });
    for (let i = 0; i < 30; i++) {
      const r = await c.call('loki_memory_record', {
        layer: 'episode',
        title: `migration step ${i}`,
        body: 'the database migration ran',
        outcome: 'success',
      });
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    }
    await c.close();
    const db = openDb(p.root, false);
    db.prepare('UPDATE memory_fts_data SET block = substr(block, 1, length(block) - 3) WHERE id > 10').run();
    db.close();
    const sick = loki(['doctor']);
    expect(sick.code).toBe(1);
    expect(sick.out).toMatch(/FAIL\s+database\s+the memory search index is damaged .*loki doctor --fix/);
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(auditLines(p.root).at(-1)).toMatchObject({ action: 'memory.reindex', data: { items: 30 } });
    const found = JSON.parse(loki(['memory', 'search', 'migration', '--json']).out) as {
      hits?: unknown[];
      results?: unknown[];
    };
    expect((found.hits ?? found.results ?? []).length).toBeGreaterThan(0);
  });

  it('commands refused before any run, and a resume with nothing to clear, create no .loki/', () => {
    p = tempProject({ git: true });
    for (const args of [
      ['waive', 'open-work', '--reason', 'the person says so'],
      ['waive', 'task', 't1', '--reason', 'the person says so'],
      ['rollback', 'to', 'cp-3', '--code'],
      ['rollback', 'latest'],
      ['tasks', 'retry', 't9'],
      ['checkpoint', 'two\nlines'],
    ]) {
      const r = loki(args);
      expect(r.code, `${args.join(' ')}: ${r.out}${r.err}`).toBe(1);
      expect(fs.existsSync(path.join(p.root, '.loki')), args.join(' ')).toBe(false);
    }
    expect(loki(['resume'])).toMatchObject({ code: 0, out: 'Nothing to resume: no PAUSE or STOP.\n' });
    expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
  });

  it('doctor refuses a .loki that is a symlink', () => {
    p = tempProject();
    const elsewhere = path.join(path.dirname(p.root), 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.symlinkSync(elsewhere, path.join(p.root, '.loki'));
    const r = loki(['doctor']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL\s+\.loki\/\s+.*symbolic link/);
  });

  it('refuses / as the project root and honours --project-dir and LOKI_PROJECT_DIR', () => {
    p = tempProject();
    const r = loki(['status'], { cwd: '/' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/refused.*--project-dir/s);
    expect(loki(['status', '--project-dir', p.root], { cwd: '/' }).code).toBe(0);
    expect(loki(['status'], { cwd: '/', env: { LOKI_PROJECT_DIR: p.root } }).out).toContain(p.root);
  });
});
