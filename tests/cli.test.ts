/** The `loki` command, spawned from dist: output, exit codes, and what it does to .loki/. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HELP } from '../mcp-server/src/cli/main.js';
import { DIST, auditLines, connect, tempProject, type TempProject } from './helpers.js';

const CLI = path.join(DIST, 'loki.js');

let p: TempProject;
afterEach(() => p?.cleanup());

function loki(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? p.root, env: { ...p.env, ...opts.env }, encoding: 'utf8' });
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
    expect(loki(["--help"])).toMatchObject({ code: 0, out: HELP });
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
    expect(human.out).toMatch(/Phases\s+\[BOOTSTRAP\] > DEVELOPMENT > QA/);
    expect(human.out).toMatch(/Turns\s+1 of 1000/);
    expect(human.out).toMatch(/Next\s+phase BOOTSTRAP/);
    const json = JSON.parse(loki(['status', '--json']).out);
    expect(json.run).toMatchObject({ phase: 'BOOTSTRAP', tier: 'simple', iteration: 1 });
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
    expect(auditLines(p.root).map((e) => e.action).filter((a) => String(a).startsWith('signal.'))).toEqual(['signal.pause', 'signal.stop', 'signal.resume']);
  });

  it('audit verify passes on an intact log and fails, naming the first bad entry, on an edit', async () => {
    p = tempProject();
    await startRun();
    expect(loki(['audit', 'verify'])).toMatchObject({ code: 0 });
    const file = path.join(p.root, '.loki/audit/log.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[1] = lines[1]!.replace(/"action":"([a-z.]+)"/, '"action":"$1x"');
    fs.writeFileSync(file, lines.join('\n'));
    const r = loki(['audit', 'verify']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/BROKEN at entry 1/);
    expect(JSON.parse(loki(['audit', 'verify', '--json']).out)).toMatchObject({ ok: false, firstBreak: { index: 1 } });
  });

  it('audit verify catches a truncated log against the anchors', async () => {
    p = tempProject();
    await startRun();
    const file = path.join(p.root, '.loki/audit/log.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(file, `${lines.slice(0, 1).join('\n')}\n`);
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

  it('doctor passes on a healthy project and reports, then fixes, a stale lock', async () => {
    p = tempProject();
    await startRun();
    expect(loki(['doctor'])).toMatchObject({ code: 0 });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(p.root, '.loki/locks/state.lock'), JSON.stringify({ pid: Number(dead.stdout), host: (await import('node:os')).hostname(), token: 'x', at: Date.now() }));
    const sick = loki(['doctor']);
    expect(sick.code).toBe(1);
    expect(sick.out).toMatch(/FAIL\s+locks\s+stale: state/);
    expect(sick.out).toMatch(/loki doctor --fix/);
    const fixed = loki(['doctor', '--fix']);
    expect(fixed.code, fixed.out).toBe(0);
    expect(fs.existsSync(path.join(p.root, '.loki/locks/state.lock'))).toBe(false);
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
