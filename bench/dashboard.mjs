/* global fetch, AbortController */
/**
 * The dashboard's cost to a run: 8 processes draining 2,000 tasks through the engine, alone and while the built
 * `loki dashboard` serves 20 live pages (each an event stream that reloads /api/status at most once a second on
 * a change, as the page does). Paired runs in alternating order; the figure is the median of the pairs' ratios (each
 * pair ran back to back, so it is the steadier measure on a shared machine), with the ratio of the medians beside it.
 * Target: under 10 % more.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LOKI = path.join(ROOT, 'mcp-server/dist/loki.js');
const PAGES = Number(process.env.LOKI_BENCH_PAGES ?? 20);
const PAIRS = Number(process.env.LOKI_BENCH_PAIRS ?? 9);
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

/** Start the dashboard on `dir` with PAGES live pages; the returned function ends them and says what they saw. */
async function livePages(dir) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-bench-dash-'));
  const child = spawn(process.execPath, [LOKI, 'dashboard', '--port', '0'], {
    cwd: dir,
    env: { ...process.env, LOKI_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const open = await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const m = /Open\s+(http:\/\/\S+\/)#token=(\S+)/.exec(out);
      if (m) {
        clearInterval(t);
        resolve({ url: m[1], token: m[2] });
      }
    }, 20);
    child.once('exit', (code) => reject(new Error(`loki dashboard exited ${code}`)));
  });
  const headers = { Authorization: `Bearer ${open.token}` };
  const ac = new AbortController();
  let events = 0;
  let reloads = 0;
  let reloadMs = 0;
  const page = async () => {
    const res = await fetch(`${open.url}api/events`, { headers, signal: ac.signal });
    const reader = res.body.getReader();
    let last = 0;
    let pending = false;
    const reload = async () => {
      pending = false;
      last = Date.now();
      reloads += 1;
      const t0 = performance.now();
      await (await fetch(`${open.url}api/status`, { headers, signal: ac.signal })).json();
      reloadMs += performance.now() - t0;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const text = Buffer.from(value).toString('utf8');
      const n = (text.match(/event: change/g) ?? []).length;
      events += n;
      if (n > 0 && !pending && process.env.LOKI_BENCH_RELOAD !== '0') {
        pending = true;
        setTimeout(() => reload().catch(() => undefined), Math.max(0, last + 1000 - Date.now()));
      }
    }
  };
  // The pages are open before the drain, as a person's would be: each loaded its view once and holds its stream,
  // and the dashboard has settled after its start (what is measured is serving them, not starting up).
  await Promise.all(
    Array.from({ length: PAGES }, async () => (await fetch(`${open.url}api/status`, { headers })).json()),
  );
  const pages = Array.from({ length: PAGES }, () => page().catch(() => undefined));
  await new Promise((r) => setTimeout(r, 1500));
  return async () => {
    ac.abort();
    await Promise.all(pages);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(home, { recursive: true, force: true });
    log(`dashboard    ${reloads} reloads, mean ${(reloadMs / Math.max(1, reloads)).toFixed(1)} ms`);
    return { events, reloads };
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

/** `drainWith(around)`: one 8-process drain (bench/run.mjs), with `around` started before its claimers go. */
export async function dashboardSection(drainWith) {
  const alone = [];
  const watched = [];
  let seen = { events: 0, reloads: 0 };
  for (let i = 0; i < PAIRS; i++) {
    // Alternate which goes first, so neither always runs on a warmer machine.
    const order = i % 2 === 0 ? ['alone', 'watched'] : ['watched', 'alone'];
    for (const which of order) {
      if (which === 'alone') alone.push((await drainWith(undefined)).wall);
      else {
        const r = await drainWith(livePages);
        watched.push(r.wall);
        seen = r.extra;
      }
    }
    log(
      `dashboard    pair ${i + 1}: alone ${alone.at(-1).toFixed(0)} ms, with ${PAGES} pages ${watched.at(-1).toFixed(0)} ms`,
    );
  }
  const a = median(alone);
  const w = median(watched);
  const pairAdded = (median(watched.map((x, i) => x / alone[i])) - 1) * 100;
  const added = pairAdded;
  const ofMedians = (w / a - 1) * 100;
  const ratios = watched.map((x, i) => (x / alone[i] - 1) * 100);
  const spread = [Math.min(...ratios), Math.max(...ratios)];
  const pct = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)} %`;
  const day = new Date().toISOString().slice(0, 10);
  return `<!-- dashboard:begin -->
## The dashboard during a drain

Measured ${day} by \`node bench/run.mjs --only dashboard\`: 8 processes draining 2,000 tasks through the engine
(bench/run.mjs's drain), alone and while the built \`loki dashboard\` serves ${PAGES} live pages (event streams that reload
/api/status at most once a second on a change, as the page does); ${PAIRS} pairs in alternating order. The figure is the
median of the pairs' ratios (${pct(pairAdded)}); the ratio of the two medians is ${pct(ofMedians)}; single pairs ranged
from ${pct(spread[0])} to ${pct(spread[1])} on this shared machine. The pages are open, each having loaded its view, and the
dashboard has settled before the drain starts. In the last watched run the pages got ${seen.events.toLocaleString()}
change events and made ${seen.reloads.toLocaleString()} reloads.

| drain | median wall (ms) | all runs (ms) | target | status |
|---|---|---|---|---|
| alone (baseline) | ${a.toFixed(0)} | ${alone.map((x) => x.toFixed(0)).join(', ')} | - | - |
| with ${PAGES} live pages | ${w.toFixed(0)} (pairs: ${pct(added)}) | ${watched.map((x) => x.toFixed(0)).join(', ')} | < +10 % | ${added < 10 ? 'met' : 'NOT met'} |
<!-- dashboard:end -->
`;
}
