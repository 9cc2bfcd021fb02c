/**
 * The dashboard's HTTP API (issue 21): tokens and scopes, Host and Origin checks, no change on GET, bad input
 * refused with nothing changed, controls recorded as the person's actions, server-sent events, /metrics parsed by
 * the reference OpenMetrics parser (Python's prometheus_client), TLS, and `loki dashboard` as a process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Project } from '../mcp-server/src/project.js';
import { startDashboard, type Dashboard } from '../mcp-server/src/dashboard/serve.js';
import { tokensFile } from '../mcp-server/src/dashboard/auth.js';
import {
  DIST,
  auditLines,
  connect,
  dbDump,
  structured,
  tempProject,
  type Connected,
  type TempProject,
} from './helpers.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with full control of its headers (fetch may not set Host). */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {},
): Promise<Reply> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      { method: opts.method ?? 'GET', headers: opts.headers, ...(opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const SPEC = `# Notes app

## Requirements
- Users can add a note with a title
- Users can list their notes
`;

let p: TempProject;
let c: Connected | undefined;
let d: Dashboard | undefined;

async function dashboard(env: NodeJS.ProcessEnv = {}): Promise<Dashboard> {
  const project = new Project({ root: p.root, env: { ...p.env, ...env }, actor: `dashboard:${process.pid}` });
  d = await startDashboard({ project, env: { ...p.env, ...env }, port: 0, pollMs: 50, keepAliveSeconds: 1 });
  return d;
}

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
const json = (token: string) => ({ ...auth(token), 'Content-Type': 'application/json' });
const dbFile = () => path.join(p.root, '.loki', 'loki.db');
const lokiFiles = () => fs.readdirSync(path.join(p.root, '.loki')).filter((f) => !f.startsWith('loki.db'));

beforeEach(async () => {
  p = tempProject({ git: true, files: { 'prd.md': SPEC } });
  c = await connect(p);
  expect((await c.call('loki_start', { spec: 'prd.md' })).isError).toBeFalsy();
});

afterEach(async () => {
  await d?.close();
  d = undefined;
  await c?.close();
  c = undefined;
  p.cleanup();
});

describe('tokens and scopes', () => {
  it('asks for a token on every endpoint but /api/health; a read-only token reads and cannot control', async () => {
    const dash = await dashboard();
    expect((await request(`${dash.url}api/health`)).status).toBe(200);
    for (const route of [
      'api/status',
      'api/tasks',
      'api/council',
      'api/context',
      'api/audit',
      'metrics',
      'api/events',
    ]) {
      const r = await request(`${dash.url}${route}`);
      expect(r.status, route).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/Bearer/);
      expect((await request(`${dash.url}${route}`, { headers: auth('not-the-token-at-all') })).status).toBe(401);
    }
    const read = await request(`${dash.url}api/status`, { headers: auth(dash.tokens.read) });
    expect(read.status).toBe(200);
    expect(JSON.parse(read.body).run.runId).toMatch(/^r-/);

    const before = dbDump(dbFile());
    for (const route of ['control/pause', 'control/stop', 'control/force-review']) {
      const r = await request(`${dash.url}api/${route}`, {
        method: 'POST',
        headers: json(dash.tokens.read),
        body: '{}',
      });
      expect(r.status, route).toBe(403);
      expect(JSON.parse(r.body).error).toMatch(/read-only/);
    }
    expect(dbDump(dbFile())).toBe(before);
    expect(lokiFiles()).not.toContain('PAUSE');
  });

  it('keeps its tokens private to the user, takes LOKI_DASHBOARD_TOKEN, and refuses a short one', async () => {
    const dash = await dashboard();
    const file = tokensFile(p.home);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const kept = JSON.parse(fs.readFileSync(file, 'utf8')) as { operator: string; read: string };
    expect(dash.tokens.operator).toBe(kept.operator);
    await dash.close();
    d = undefined;
    // A second start reuses them.
    expect((await dashboard()).tokens.operator).toBe(kept.operator);
    await d!.close();
    d = undefined;

    const mine = 'a-token-of-my-own-choosing-123';
    const withEnv = await dashboard({ LOKI_DASHBOARD_TOKEN: mine });
    expect((await request(`${withEnv.url}api/status`, { headers: auth(mine) })).status).toBe(200);
    expect((await request(`${withEnv.url}api/status`, { headers: auth(kept.operator) })).status).toBe(401);
    await withEnv.close();
    d = undefined;
    await expect(dashboard({ LOKI_DASHBOARD_TOKEN: 'short' })).rejects.toThrow(/at least 16/);
  });
});

describe('Host and Origin', () => {
  it('refuses a foreign Host (DNS rebinding), a foreign Origin and a cross-site fetch', async () => {
    const dash = await dashboard();
    const port = new URL(dash.url).port;
    const t = dash.tokens.operator;
    const foreignHost = await request(`${dash.url}api/status`, {
      headers: { ...auth(t), Host: `evil.example:${port}` },
    });
    expect(foreignHost.status).toBe(403);
    expect(JSON.parse(foreignHost.body).error).toMatch(/not this dashboard/);
    expect((await request(`${dash.url}api/health`, { headers: { Host: `evil.example:${port}` } })).status).toBe(403);
    expect(
      (await request(`${dash.url}api/status`, { headers: { ...auth(t), Host: `localhost:${port}` } })).status,
    ).toBe(200);

    const before = dbDump(dbFile());
    const foreign = await request(`${dash.url}api/control/pause`, {
      method: 'POST',
      headers: { ...json(t), Origin: 'https://evil.example' },
      body: '{}',
    });
    expect(foreign.status).toBe(403);
    const crossSite = await request(`${dash.url}api/control/pause`, {
      method: 'POST',
      headers: { ...json(t), 'Sec-Fetch-Site': 'cross-site' },
      body: '{}',
    });
    expect(crossSite.status).toBe(403);
    const opaque = await request(`${dash.url}api/control/pause`, {
      method: 'POST',
      headers: { ...json(t), Origin: 'null' },
      body: '{}',
    });
    expect(opaque.status).toBe(403);
    expect(dbDump(dbFile())).toBe(before);
    expect(lokiFiles()).not.toContain('PAUSE');

    const same = await request(`${dash.url}api/control/pause`, {
      method: 'POST',
      headers: { ...json(t), Origin: dash.url.replace(/\/$/, ''), 'Sec-Fetch-Site': 'same-origin' },
      body: '{}',
    });
    expect(same.status).toBe(200);
    expect(lokiFiles()).toContain('PAUSE');
  });

  it('sends a Content-Security-Policy and no-store on the API', async () => {
    const dash = await dashboard();
    const page = await request(dash.url);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<script type="module" src="\/app.js">/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    const api = await request(`${dash.url}api/status`, { headers: auth(dash.tokens.read) });
    expect(api.headers['cache-control']).toBe('no-store');
  });
});

describe('reading changes nothing; bad input changes nothing', () => {
  it('a sweep of every GET endpoint leaves the stored state byte-identical, and a control is POST only', async () => {
    await c!.call('loki_checkpoint_create', { label: 'before' });
    const dash = await dashboard();
    const t = dash.tokens.operator;
    const before = dbDump(dbFile());
    const files = lokiFiles();
    for (const route of [
      'api/status',
      'api/tasks',
      'api/tasks?status=pending,in-progress',
      'api/verification',
      'api/checklist',
      'api/council',
      'api/context',
      'api/memory?q=notes',
      'api/checkpoints',
      'api/audit',
      'api/audit?before=3&limit=2',
      'api/audit/verify',
      'api/receipts',
      'metrics',
    ]) {
      const r = await request(`${dash.url}${route}`, { headers: auth(t) });
      expect(r.status, route).toBe(200);
    }
    for (const route of ['api/control/pause', 'api/control/stop', 'api/checkpoints/cp-1/rollback'])
      expect((await request(`${dash.url}${route}`, { headers: auth(t) })).status, route).toBe(404);
    expect(dbDump(dbFile())).toBe(before);
    expect(lokiFiles()).toEqual(files);
  });

  it('refuses bad input with a message that says how to fix it, and changes nothing', async () => {
    await c!.call('loki_checkpoint_create', { label: 'before' });
    const dash = await dashboard();
    const t = dash.tokens.operator;
    const before = dbDump(dbFile());
    const cases: [string, string, Record<string, string>, string, RegExp][] = [
      ['POST', 'api/control/pause', auth(t), '{}', /as JSON/],
      ['POST', 'api/control/pause', json(t), '{not json', /not valid JSON/],
      ['POST', 'api/control/pause', json(t), '{"extra":1}', /does not fit/],
      ['POST', 'api/control/force-review', json(t), '{"reason":""}', /reason/],
      ['POST', 'api/checklist/r-1/waive', json(t), '{}', /reason/],
      ['POST', 'api/checklist/no-such-item/waive', json(t), '{"reason":"not needed here"}', /./],
      ['POST', 'api/checkpoints/cp-1/rollback', json(t), '{"confirm":"cp-2"}', /confirm the rollback/],
      ['POST', 'api/checkpoints/cp-999/rollback', json(t), '{"confirm":"cp-999"}', /cp-999/],
      ['POST', 'api/control/pause', json(t), JSON.stringify({ pad: 'x'.repeat(20_000) }), /16 KB/],
      ['GET', 'api/tasks?status=done', auth(t), '', /not a task state/],
      ['GET', 'api/audit?limit=-1', auth(t), '', /whole number/],
      ['GET', 'api/nothing-here', auth(t), '', /no such endpoint/],
    ];
    for (const [method, route, headers, body, message] of cases) {
      const r = await request(`${dash.url}${route}`, { method, headers, ...(body ? { body } : {}) });
      expect(r.status, `${method} ${route} ${body.slice(0, 30)}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(JSON.parse(r.body).error, route).toMatch(message);
    }
    expect(dbDump(dbFile())).toBe(before);
    expect(lokiFiles()).not.toContain('PAUSE');
  });
});

describe('controls are the person’s actions', () => {
  it('pause, resume, stop, force review, waive and rollback each record the person via the dashboard', async () => {
    await c!.call('loki_checkpoint_create', { label: 'before the waiver' });
    const checklist = structured<{ items: { id: string; heldOut: boolean }[] }>(await c!.call('loki_checklist_get'));
    const item = checklist.items.find((i) => !i.heldOut)!;
    const dash = await dashboard();
    const t = dash.tokens.operator;
    const post = async (route: string, body: unknown) => {
      const r = await request(`${dash.url}api/${route}`, {
        method: 'POST',
        headers: json(t),
        body: JSON.stringify(body),
      });
      expect(r.status, `${route}: ${r.body}`).toBe(200);
      return JSON.parse(r.body) as Record<string, unknown>;
    };
    expect((await post('control/pause', {})).changed).toEqual(['PAUSE']);
    expect(lokiFiles()).toContain('PAUSE');
    expect((await post('control/resume', {})).changed).toEqual(['PAUSE']);
    expect(lokiFiles()).not.toContain('PAUSE');
    await post('control/stop', {});
    expect(lokiFiles()).toContain('STOP');
    await post('control/resume', {});
    await post('control/force-review', { reason: 'check the listing' });
    await post(`checklist/${item.id}/waive`, { reason: 'the person decided it is out of scope' });
    const rolled = (await post('checkpoints/cp-1/rollback', { confirm: 'cp-1' })).rollback as { target: string };
    expect(rolled.target).toBe('cp-1');

    const entries = auditLines(p.root);
    for (const action of [
      'signal.pause',
      'signal.resume',
      'signal.stop',
      'council.force-review',
      'run.waive',
      'checkpoint.rollback',
    ]) {
      const e = entries.filter((x) => x.action === action).at(-1);
      expect(e, action).toBeDefined();
      expect(String(e!.actor), action).toMatch(new RegExp(`^person:.+ via dashboard:${process.pid}$`));
    }
    // The waiver names where the person acted.
    const waive = entries.find((x) => x.action === 'run.waive')!;
    expect((waive.data as { items: string[] }).items).toEqual([item.id]);
  });
});

describe('live updates and metrics', () => {
  it('watching changes nothing: alerts fire at the agent’s counted turn, not from the dashboard', async () => {
    const fired = path.join(p.home, 'fired.txt');
    fs.writeFileSync(
      path.join(p.root, '.loki', 'config.yaml'),
      `notify:\n  taskFailures: 1\n  command: 'printf "%s\\n" "$LOKI_ALERT_TRIGGER" >> ${fired}'\n`,
    );
    const dash = await dashboard();
    const ac = new AbortController();
    const res = await fetch(`${dash.url}api/events`, { headers: auth(dash.tokens.read), signal: ac.signal });
    const reader = res.body!.getReader();
    let seen = '';
    const until = async (re: RegExp) => {
      while (!re.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${re}`);
        seen += new TextDecoder().decode(value);
      }
    };
    await until(/event: hello/);
    const claim = structured<{ task: { id: string }; token: string }>(await c!.call('loki_task_claim'));
    await c!.call('loki_task_fail', { id: claim.task.id, token: claim.token, error: 'the build broke' });
    await until(/"type":"task-failed"/);
    // The page saw it; nothing was fired or recorded by the dashboard, and the status only reads the alert.
    const status = JSON.parse((await request(`${dash.url}api/status`, { headers: auth(dash.tokens.read) })).body);
    expect(status.alerts.map((a: { trigger: string }) => a.trigger)).toContain('task-failures');
    expect(
      auditLines(p.root).filter((e) => String(e.actor).startsWith('dashboard:') || e.action === 'notify.fired'),
    ).toEqual([]);
    expect(fs.existsSync(fired)).toBe(false);
    ac.abort();
    await reader.cancel().catch(() => undefined);
    // The agent's next counted turn fires it, once.
    await c!.call('loki_status');
    expect(auditLines(p.root).filter((e) => e.action === 'notify.fired')).toHaveLength(1);
  });

  it('streams a change event when the run changes', async () => {
    const dash = await dashboard();
    const ac = new AbortController();
    const res = await fetch(`${dash.url}api/events`, { headers: auth(dash.tokens.read), signal: ac.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const until = async (re: RegExp) => {
      while (!re.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${re}: ${seen}`);
        seen += decoder.decode(value, { stream: true });
      }
    };
    await until(/event: hello/);
    await c!.call('loki_task_add', { tasks: [{ title: 'Export notes as CSV' }] });
    await until(/event: change\ndata: .*"head"/);
    const claimed = await c!.call('loki_task_claim');
    expect(claimed.isError).toBeFalsy();
    await until(/"type":"task-claimed"/);
    ac.abort();
    await reader.cancel().catch(() => undefined);
  });

  it('serves /metrics that the reference OpenMetrics parser accepts, with the run’s figures', async () => {
    const claim = structured<{ token: string }>(await c!.call('loki_task_claim'));
    const dash = await dashboard();
    // The tasks view shows who holds a task and until when, never the claim token that completes it.
    const tasks = await request(`${dash.url}api/tasks`, { headers: auth(dash.tokens.read) });
    expect(tasks.body).toMatch(/"in-progress"/);
    expect(tasks.body).not.toContain(claim.token);
    expect(tasks.body).not.toMatch(/"token"/);
    const r = await request(`${dash.url}metrics`, { headers: auth(dash.tokens.read) });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/openmetrics-text; version=1.0.0/);
    expect(r.body.endsWith('# EOF\n')).toBe(true);
    // prometheus_client's parser is strict about the OpenMetrics text format (Debian's python3-prometheus-client).
    const parsed = spawnSync(
      // Debian's python (the one python3-prometheus-client installs into), not another first on PATH.
      '/usr/bin/python3',
      [
        '-c',
        `import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
print(json.dumps(out))`,
      ],
      { input: r.body, encoding: 'utf8' },
    );
    expect(parsed.stderr).toBe('');
    expect(parsed.status).toBe(0);
    const samples = JSON.parse(parsed.stdout) as Record<string, number>;
    expect(samples['loki_tasks{"state": "in-progress"}']).toBe(1);
    expect(samples['loki_task_claims_total{}']).toBe(1);
    expect(samples['loki_audit_entries_total{}']).toBe(auditLines(p.root).length);
    expect(Object.keys(samples).some((k) => k.startsWith('loki_run_info'))).toBe(true);
  });
});

describe('TLS', () => {
  it('serves HTTPS with LOKI_TLS_CERT and LOKI_TLS_KEY, and names a missing half', async () => {
    const cert = path.join(p.home, 'cert.pem');
    const key = path.join(p.home, 'key.pem');
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { encoding: 'utf8' },
    );
    expect(made.status, made.stderr).toBe(0);
    const dash = await dashboard({ LOKI_TLS_CERT: cert, LOKI_TLS_KEY: key });
    expect(dash.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const r = await request(`${dash.url}api/status`, { headers: auth(dash.tokens.read), ca: fs.readFileSync(cert) });
    expect(r.status).toBe(200);
    await dash.close();
    d = undefined;
    await expect(dashboard({ LOKI_TLS_CERT: cert })).rejects.toThrow(/both LOKI_TLS_CERT and LOKI_TLS_KEY/);
  });
});

describe('loki dashboard, the command', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  function startCli(args: string[]): Promise<{ out: string; err: string }> {
    child = spawn(process.execPath, [path.join(DIST, 'loki.js'), 'dashboard', ...args], { cwd: p.root, env: p.env });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    return new Promise((resolve, reject) => {
      const t = setInterval(() => {
        if (/Open\s+http/.test(out)) {
          clearInterval(t);
          resolve({ out, err });
        }
      }, 50);
      child!.once('exit', (code) => {
        clearInterval(t);
        reject(new Error(`exited ${code}: ${out}${err}`));
      });
    });
  }

  it('prints the address with its token, serves the page, and ends on SIGINT', async () => {
    const { out } = await startCli(['--port', '0']);
    const open = /Open\s+(http:\/\/127\.0\.0\.1:\d+\/)#token=(\S+)/.exec(out)!;
    expect(open).not.toBeNull();
    const r = await request(`${open[1]}api/status`, { headers: auth(open[2]!) });
    expect(r.status).toBe(200);
    // The CLI's dashboard records a person's action as the dashboard's.
    const pause = await request(`${open[1]}api/control/pause`, { method: 'POST', headers: json(open[2]!), body: '{}' });
    expect(pause.status).toBe(200);
    expect(String(auditLines(p.root).at(-1)!.actor)).toMatch(/^person:.+ via dashboard:\d+$/);
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child!.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('warns when it serves beyond loopback, and refuses a bad port', async () => {
    const { err } = await startCli(['--port', '0', '--host', '0.0.0.0']);
    expect(err).toMatch(/beyond this machine/);
    expect(err).toMatch(/LOKI_TLS_CERT/);
    child!.kill('SIGKILL');
    const bad = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), 'dashboard', '--port', '99999'], {
      cwd: p.root,
      env: p.env,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/not a TCP port/);
  });
});

describe('docs/api.md', () => {
  it('lists exactly the routes the server registers', async () => {
    const { dashboardApp } = await import('../mcp-server/src/dashboard/app.js');
    const { ChangeFeed } = await import('../mcp-server/src/dashboard/events.js');
    const project = new Project({ root: p.root, env: p.env, actor: 'dashboard:1' });
    const app = dashboardApp({
      project,
      tokens: { operator: 'o'.repeat(20), read: 'r'.repeat(20), source: 'generated', file: '' },
      feed: new ChangeFeed(project),
      assets: { dir: null, get: () => undefined },
      hosts: new Set(),
    });
    const served = new Set(
      app.routes.filter((r) => r.method === 'GET' || r.method === 'POST').map((r) => `${r.method} ${r.path}`),
    );
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'api.md'), 'utf8');
    const documented = new Set([...doc.matchAll(/^\| (GET|POST) \| `([^`]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`));
    expect([...documented].sort()).toEqual([...served].sort());
    project.close();
  });
});
