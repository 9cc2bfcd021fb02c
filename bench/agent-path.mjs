#!/usr/bin/env node
/**
 * The agent path: one honest run of the 4-requirement calc spec in each real host (Claude Code with the plugin,
 * Codex, Cline), offline against the fake model API of tests/e2e, with a scripted model that follows each result's
 * `Next:` line literally. Prints per host what the model paid: loki tool calls, all tool calls, characters of loki
 * results as the model saw them, the largest loki result, and the characters of tools[] in the first request.
 *
 *   node bench/agent-path.mjs [--only claude,codex,cline]   (prints the section)
 *   node bench/run.mjs --only agent-path                    (the same, writing it into bench/RESULTS.md)
 *
 * Build first (`node scripts/build.mjs`): the hosts run mcp-server/dist.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cannotRun, honestRun } from '../tests/e2e/hosts.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOSTS = [
  { host: 'claude', name: 'Claude Code 2.1.332 (plugin)', lokiCalls: 20, lokiChars: 15_000 },
  { host: 'codex', name: 'Codex 0.171.0 (`codex exec`)', lokiCalls: 22 },
  { host: 'cline', name: 'Cline 3.0.65 (`cline --json`)', lokiCalls: 22 },
];
const MAX_RESULT = 6_000;
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);
const n = (x) => x.toLocaleString('en-US');

/** Run each host once; the rows of the section. */
export async function agentPathRuns(only) {
  const rows = [];
  for (const h of HOSTS) {
    if (only && !only.includes(h.host)) continue;
    const why = cannotRun(h.host);
    if (why) {
      log(`${h.host}: skipped (${why})`);
      rows.push({ ...h, skipped: why });
      continue;
    }
    const t0 = Date.now();
    const run = await honestRun(h.host, { timeoutMs: 300_000 });
    const r = run.report;
    run.cleanup();
    const row = { ...h, r, seconds: (Date.now() - t0) / 1000 };
    rows.push(row);
    log(
      `${h.host.padEnd(7)} loki calls ${r.lokiCalls} (${JSON.stringify(r.lokiCallsByTool)}), all tool calls ${r.toolCalls}, ` +
        `loki results ${r.lokiResultChars} chars, largest ${r.largest?.tool} ${r.largest?.chars}, ` +
        `tools[] ${r.firstToolsChars} chars; receipt ${r.receipt ?? 'none'}, defects ${r.defects.length}, ` +
        `client ${r.clients.map((c) => `${c.name} ${c.version}`).join(', ')}, egress refused ${r.egress.length}, ${row.seconds.toFixed(0)} s`,
    );
    for (const d of r.defects)
      log(`  defect: ${d.kind}: ${d.tool} ${(d.next ?? d.text ?? d.chars ?? '').toString().slice(0, 300)}`);
  }
  return rows;
}

const met = (ok) => (ok ? 'met' : 'NOT met');

export function agentPathSection(rows) {
  const day = new Date().toISOString().slice(0, 10);
  const commit = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const body = rows.map((h) => {
    if (h.skipped) return `| ${h.name} | skipped: ${h.skipped} | | | | | | |`;
    const r = h.r;
    const calls = `${r.lokiCalls} (<= ${h.lokiCalls}: ${met(r.lokiCalls <= h.lokiCalls)})`;
    const chars = h.lokiChars
      ? `${n(r.lokiResultChars)} (<= ${n(h.lokiChars)}: ${met(r.lokiResultChars <= h.lokiChars)})`
      : n(r.lokiResultChars);
    const largest = `${r.largest?.tool ?? '-'} ${n(r.largest?.chars ?? 0)} (<= ${n(MAX_RESULT)}: ${met((r.largest?.chars ?? 0) <= MAX_RESULT)})`;
    const outcome = `${r.receipt ?? 'no receipt'}, ${r.defects.length} defect(s)`;
    const all = r.toolSearchCalls ? `${r.toolCalls} (${r.toolSearchCalls} ToolSearch)` : `${r.toolCalls}`;
    return `| ${h.name} | ${calls} | ${all} | ${chars} | ${largest} | ${n(r.firstToolsChars)} | ${outcome} | ${h.seconds.toFixed(0)} s |`;
  });
  const byTool = rows
    .filter((h) => h.r)
    .map(
      (h) =>
        `- ${h.host}: ${Object.entries(h.r.lokiCallsByTool)
          .map(([t, c]) => `${t} ${c}`)
          .join(', ')}`,
    );
  return `<!-- agent-path:begin -->
## The agent path in real hosts (4-requirement spec)

Measured ${day} at ${commit} (-dirty: with uncommitted changes) by \`node bench/run.mjs --only agent-path\` (bench/agent-path.mjs): each host CLI,
installed as a user has it, runs offline against the fake model API of tests/e2e with a scripted model that follows
each result's \`Next:\` line literally, from \`loki_start {"spec":"prd.md"}\` to the receipt. Characters are of
the loki results as the host showed them to the model; tools[] is the first model request's tools array, as JSON.

| host | loki tool calls | all tool calls | chars of loki results | largest loki result | tools[] chars | outcome | wall |
|---|---|---|---|---|---|---|---|
${body.join('\n')}

Loki calls by tool:
${byTool.join('\n')}
<!-- agent-path:end -->
`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--only');
  const only = i >= 0 ? process.argv[i + 1]?.split(',') : undefined;
  const section = agentPathSection(await agentPathRuns(only));
  process.stdout.write(section);
}
