/**
 * The Claude Code hook handlers. Each takes the JSON the host sends and returns the JSON to print (or null for
 * "no opinion"). They never load the MCP SDK, and outside a Loki Mode project they do nothing.
 *   SessionStart  a short briefing, so the agent resumes after a restart or a compaction
 *   PreToolUse    the guard (guard-hook.ts, a bundle of its own)
 *   PostToolUse   usage-hook.ts (a bundle of its own)
 *   Stop          the autonomy loop (domain/autonomy.ts decideStop)
 *   SessionEnd    sessions whose process is gone are marked stopped (never a phantom "running")
 */
import { decideStop } from '../domain/autonomy.js';
import type { Project } from '../project.js';
import { briefing } from '../run/briefing.js';
import { SESSION_RECORD, sessionFile } from '../run/records.js';
import { listSessions } from '../run/sessions.js';
import { readRun } from '../run/state.js';
import type { HookInput, HookOutput } from './io.js';
import { HOOK_STATE_FILE, HOOK_STATE_RECORD, readHookState } from '../run/hook-state.js';

export async function sessionStart(project: Project, _input: HookInput): Promise<HookOutput> {
  const store = project.existingStore();
  const run = readRun(store);
  if (!run || run.status !== 'active') return null;
  const b = await briefing(project, undefined, { peek: true });
  const q = b.queue;
  const context = [
    `Loki Mode run ${run.runId} is active: phase ${run.phase} (${run.tier} tier), iteration ${run.iteration}.`,
    q
      ? `Tasks: ${q.counts.pending} pending, ${q.counts['in-progress']} in progress, ${q.counts.completed} completed, ${q.counts['dead-letter']} dead-letter.`
      : '',
    ...b.problems.slice(0, 3).map((p) => `Problem: ${p}`),
    `Resume: call loki_status first (MCP server "loki"), then ${b.next}.`,
  ].filter(Boolean);
  return { hookSpecificOutput: { hookEventName: 'SessionStart', additionalContext: context.join('\n') } };
}

export async function stop(project: Project, input: HookInput): Promise<HookOutput> {
  const store = project.existingStore();
  const run = readRun(store);
  if (!store || !run) return null;
  const config = project.config();
  const state = readHookState(store, run.runId);
  const b = await briefing(project, undefined, { peek: true });
  const decision = decideStop({
    run: { runId: run.runId, status: run.status, iteration: run.iteration, stopReason: run.stopReason },
    maxIterations: config.maxIterations,
    pause: b.signals.pause,
    stop: b.signals.stop,
    budget: { limitUsd: config.budgetLimitUsd, spentUsd: state.usage.costUsd },
    stopHookActive: input.stop_hook_active === true,
    lastBlock: state.stopBlocks,
    next: b.next,
  });
  await store.mutate(
    () => {
      const s = readHookState(store, run.runId);
      const stopBlocks = decision.block
        ? {
            iteration: run.iteration,
            count: s.stopBlocks && s.stopBlocks.iteration === run.iteration ? s.stopBlocks.count + 1 : 1,
          }
        : null;
      store.records.write(HOOK_STATE_FILE, HOOK_STATE_RECORD, {
        ...s,
        stopBlocks,
        updatedAt: new Date().toISOString(),
      });
    },
    () =>
      decision.block ? undefined : { action: 'hook.stop-allowed', target: run.runId, data: { why: decision.why } },
  );
  return decision.block ? { decision: 'block', reason: decision.reason } : null;
}

export async function sessionEnd(project: Project, _input: HookInput): Promise<HookOutput> {
  const store = project.existingStore();
  if (!store) return null;
  const ended: string[] = [];
  for (const s of listSessions(store)) {
    if (s.status !== 'running' || processAlive(s.pid)) continue;
    const now = new Date().toISOString();
    store.records.write(sessionFile(s.id), SESSION_RECORD, {
      ...s,
      status: 'stopped',
      updatedAt: now,
      stoppedAt: now,
      stopReason: 'host session ended',
    });
    ended.push(s.id);
  }
  if (ended.length) await store.audit.append('session.end', undefined, { sessions: ended });
  return null;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
