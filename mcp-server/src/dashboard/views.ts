/**
 * What the dashboard shows, read from the same services the MCP tools and the CLI use: each function is one page's
 * data (or one API answer), read-only. Nothing here counts a turn or writes a record.
 */
import { effectiveThreshold } from '../domain/council.js';
import type { Project } from '../project.js';
import { briefing } from '../run/briefing.js';
import { readHookState } from '../run/hook-state.js';
import { sessionLiveness } from '../run/records.js';
import { listSessions } from '../run/sessions.js';
import { readRun } from '../run/state.js';
import { readCatalog } from '../checkpoints/catalog.js';
import { checkpointRow } from '../checkpoints/records.js';
import { selectLatest } from '../domain/checkpoints.js';
import { listMemory, searchMemory, MAX_LIMIT } from '../memory/service.js';
import { checklistView, readChecklist } from '../trust/checklist.js';
import { listCouncils, publicVerdicts } from '../trust/council.js';
import { listProofs, readProofFile, verifyProof } from '../trust/receipt.js';
import { readTrust } from '../trust/state.js';
import { readWaivers } from '../trust/waivers.js';
import { listVerifications, verificationFindings } from '../verify/index.js';
import { snapshotTree } from '../run/git.js';
import { countStates, type Task, type TaskState } from '../domain/tasks.js';
import { repeatsAlert } from '../domain/notify.js';

const runOf = (project: Project) => readRun(project.existingStore());

export async function statusView(project: Project) {
  const b = await briefing(project, undefined, { peek: true });
  const sessions = listSessions(project.existingStore())
    .slice(0, 20)
    .map((s) => ({ id: s.id, provider: s.provider, pid: s.pid, updatedAt: s.updatedAt, liveness: sessionLiveness(s) }));
  // A problem an alert already says (the context filling up, the budget) is shown once, as the alert.
  return {
    ...b,
    nextCall: undefined,
    problems: b.problems.filter((p) => !repeatsAlert(p, b.alerts)),
    sessions,
  };
}

export function tasksView(project: Project, status: readonly TaskState[] | undefined) {
  const run = runOf(project);
  if (!run) return { runId: null, counts: null, tasks: [] };
  const all = project.tasks().list({}).tasks;
  const counts = countStates(all);
  // Claim tokens stay with the agents that hold them: a page (a read-only viewer's too) never needs one.
  const tasks = (status ? all.filter((t) => status.includes(t.status)) : all).map(withoutTokens);
  return { runId: run.runId, counts, tasks };
}

function withoutTokens(t: Task) {
  return {
    ...t,
    lease: t.lease ? { agent: t.lease.agent, claimedAt: t.lease.claimedAt, expiresAt: t.lease.expiresAt } : null,
    attempts: t.attempts.map(({ token: _token, ...a }) => a),
  };
}

export function verificationView(project: Project) {
  const run = runOf(project);
  if (!run) return { runId: null, verifications: [] };
  const records = listVerifications(project, run.runId).slice(-20).reverse();
  return {
    runId: run.runId,
    verifications: records.map((r) => ({
      id: r.id,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      codeState: r.codeState,
      cleanRoom: r.cleanRoom != null,
      checks: r.checks.map((c) => ({
        name: c.name,
        verdict: c.verdict,
        reason: c.reason,
        command: c.command,
        exitCode: c.exitCode,
        durationMs: c.durationMs,
        tests: c.tests,
        counted: c.runner?.counted ?? null,
      })),
      diff: { filesChanged: r.diff.filesChanged, insertions: r.diff.insertions, deletions: r.diff.deletions },
      testsGone: r.testsGone ?? null,
      secrets: r.secrets.findings.length,
      findings: verificationFindings(r),
      notes: r.notes,
    })),
  };
}

export function checklistPageView(project: Project) {
  const run = runOf(project);
  if (!run) return { runId: null, checklist: null, waivers: [] };
  const store = project.existingStore();
  const list = readChecklist(store, run.runId);
  return {
    runId: run.runId,
    status: run.status,
    checklist: list ? checklistView(list) : null,
    waivers: readWaivers(store, run.runId),
  };
}

export function councilView(project: Project) {
  const run = runOf(project);
  const config = project.config();
  const base = {
    enabled: config.council.enabled,
    size: config.council.size,
    threshold: effectiveThreshold(config.council.size, config.council.threshold),
  };
  if (!run) return { runId: null, ...base, forcedReview: null, findings: [], councils: [] };
  const store = project.existingStore();
  const trust = readTrust(store, run.runId);
  return {
    runId: run.runId,
    ...base,
    forcedReview: trust.forcedReview,
    findings: trust.findings,
    councils: listCouncils(store, run.runId).map(publicVerdicts).reverse(),
  };
}

export function contextView(project: Project) {
  const config = project.config();
  const run = runOf(project);
  const hooks = readHookState(project.existingStore(), run?.runId ?? null);
  const measured = hooks.toolCalls > 0;
  const windowTokens = config.contextWindowTokens;
  const limitUsd = config.budgetLimitUsd;
  const pct = (x: number, of: number) => Math.round((x / of) * 1000) / 10;
  return {
    runId: run?.runId ?? null,
    measured,
    note: measured
      ? 'measured by the Claude Code hooks from the host transcript'
      : 'not measured: only Claude Code reports usage to loki (through its hooks); Codex and Cline report none',
    windowTokens,
    contextTokens: hooks.usage.contextTokens,
    contextPct: measured ? pct(hooks.usage.contextTokens, windowTokens) : null,
    costUsd: Number(hooks.usage.costUsd.toFixed(4)),
    limitUsd,
    budgetPct: measured && limitUsd ? pct(hooks.usage.costUsd, limitUsd) : null,
    tokens: {
      input: hooks.usage.inputTokens,
      output: hooks.usage.outputTokens,
      cacheWrite: hooks.usage.cacheWriteTokens,
      cacheRead: hooks.usage.cacheReadTokens,
    },
    toolCalls: hooks.toolCalls,
    timeline: hooks.timeline ?? [],
  };
}

/** A search; with no words, the newest memories (the page's first view). */
export function memoryView(project: Project, query: string, limit: number) {
  const n = Math.min(Math.max(limit, 1), MAX_LIMIT);
  if (query.trim() === '') {
    const newest = listMemory(project, { limit: n });
    return { query: null, results: newest.items, matched: newest.total, problems: newest.problems, newest: true };
  }
  return { ...searchMemory(project, { query, limit: n }), newest: false };
}

export function checkpointsView(project: Project) {
  const store = project.existingStore();
  const catalog = store ? readCatalog(store) : { records: [], damaged: [] };
  return {
    latest: selectLatest(catalog.records)?.id ?? null,
    checkpoints: [...catalog.records].reverse().map(checkpointRow),
    damaged: catalog.damaged,
  };
}

export function auditView(project: Project, before: number | undefined, limit: number) {
  const store = project.existingStore();
  if (!store) return { head: -1, count: 0, entries: [] };
  const head = store.audit.head();
  const upTo = before === undefined ? head : Math.min(before - 1, head);
  const from = Math.max(0, upTo - limit + 1);
  const entries = upTo < 0 ? [] : store.audit.entries(from, upTo - from + 1).reverse();
  return {
    head,
    count: store.audit.count(),
    entries: entries.map((e) => ({
      seq: e.seq,
      at: e.ts,
      actor: e.actor,
      action: e.action,
      target: e.target,
      data: e.data,
    })),
  };
}

export function auditVerifyView(project: Project) {
  const store = project.existingStore();
  if (!store) return { ok: true, count: 0, head: '', firstBreak: null, anchors: [] };
  return store.audit.verify();
}

export function receiptsView(project: Project) {
  const store = project.existingStore();
  return {
    receipts: listProofs(store).map((runId) => ({
      runId,
      headline: /^# (.+)$/m.exec(readProofFile(store!, runId, 'RECEIPT.md') ?? '')?.[1] ?? '(unreadable)',
    })),
  };
}

export function receiptView(project: Project, runId: string) {
  const store = project.existingStore();
  if (!store || !listProofs(store).includes(runId)) return undefined;
  return { runId, receipt: readProofFile(store, runId, 'RECEIPT.md') ?? null };
}

/** `loki proof verify`: the receipt re-hashed and its diff derived again from the code as it is now. */
export function receiptCheckView(project: Project, runId: string) {
  const store = project.existingStore();
  if (!store || !listProofs(store).includes(runId)) return undefined;
  return { runId, check: verifyProof(store, project.root, runId, () => snapshotTree(project.root)) };
}
