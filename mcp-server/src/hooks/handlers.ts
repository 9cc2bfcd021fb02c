/**
 * The Claude Code hook handlers. Each takes the JSON the host sends and returns the JSON to print (or null for
 * "no opinion"). They never load the MCP SDK, and outside a Loki Mode project they do nothing.
 *   SessionStart  a short briefing, so the agent resumes after a restart or a compaction (tools named as the host
 *                 shows them: tool-names.ts)
 *   PreToolUse    the guard (guard-hook.ts, a bundle of its own)
 *   PostToolUse   usage-hook.ts (a bundle of its own)
 *   Stop          the autonomy loop (domain/autonomy.ts decideStop), saying which limit ended it
 *   SessionEnd    sessions whose process is gone are marked stopped (never a phantom "running")
 */
import { LIMIT_REMEDY, decideStop, nextStopBlock } from '../domain/autonomy.js';
import type { Project } from '../project.js';
import { briefing } from '../run/briefing.js';
import { endGoneSessions } from '../run/sessions.js';
import { HUMAN_INPUT } from '../run/signals.js';
import { readRun } from '../run/state.js';
import type { HookInput, HookOutput } from './io.js';
import { HOOK_STATE_FILE, HOOK_STATE_RECORD, readHookState } from '../run/hook-state.js';
import { hostNames, toolPrefix } from './tool-names.js';

/** Problems listed in the SessionStart briefing; loki_status lists every one. */
const BRIEFED_PROBLEMS = 6;

/**
 * The SessionStart briefing: the run as loki_status would report it (signals, human input waiting, problems, the
 * next step), with the tools named as this host shows them to the model. Read-only: it counts no turn and
 * delivers no human input (loki_status does both).
 */
export async function sessionStart(project: Project, _input: HookInput): Promise<HookOutput> {
  const store = project.existingStore();
  const run = readRun(store);
  if (!store || !run || run.status === 'completed') return null;
  const b = await briefing(project, undefined, { peek: true });
  const prefix = toolPrefix(project.root, project.env);
  const q = b.queue;
  const h = b.signals.humanInput;
  const signals = [b.signals.stop && 'STOP', b.signals.pause && 'PAUSE'].filter(Boolean);
  const context = [
    run.status === 'active'
      ? `Loki Mode run ${run.runId} is active: phase ${run.phase} (${run.tier} tier), iteration ${run.iteration}.`
      : `Loki Mode run ${run.runId} is ${run.status} (${run.stopReason ?? run.status}): phase ${run.phase}, iteration ${run.iteration}.`,
    signals.length ? `Signals: ${signals.join(', ')}.` : '',
    // A peek leaves HUMAN_INPUT.md in place: say it waits, since only loki_status hands it over.
    h.status === 'none' && store.exists(HUMAN_INPUT)
      ? 'Human input: the user left a directive in .loki/HUMAN_INPUT.md; loki_status delivers it.'
      : h.status !== 'none' && h.status !== 'delivered'
        ? `Human input ${h.status}: ${h.reason}`
        : '',
    q
      ? `Tasks: ${q.counts.pending} pending, ${q.counts['in-progress']} in progress, ${q.counts.completed} completed, ${q.counts['dead-letter']} dead-letter.`
      : '',
    ...b.problems.slice(0, BRIEFED_PROBLEMS).map((p) => `Problem: ${p}`),
    b.problems.length > BRIEFED_PROBLEMS
      ? `(${b.problems.length - BRIEFED_PROBLEMS} more problems: loki_status lists them.)`
      : '',
    `Loki Mode tools are named ${prefix}<tool> here.`,
    // A stopped run has nothing to resume, and a session opened later for other work must not be told to end.
    run.status === 'active'
      ? `Resume: call loki_status first, then ${b.next}.`
      : 'Nothing to resume: a new run starts with loki_start and a spec.',
  ].filter(Boolean);
  return {
    hookSpecificOutput: { hookEventName: 'SessionStart', additionalContext: hostNames(context.join('\n'), prefix) },
  };
}

/**
 * The autonomy loop. While the run is active and the agent made progress (any tool call) since the last block, the
 * stop is blocked with the next step. When a limit lets it stop (STOP, PAUSE, the budget, the iteration limit, a
 * stopped run), the user is told which (`systemMessage`, shown by Claude Code, never to the model) once, and the
 * model too (additional context, which continues the conversation one turn) unless a loki_status result or the
 * PostToolUse hook already told it.
 */
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
    toolCalls: state.toolCalls,
    lastBlock: state.stopBlocks,
    next: b.next,
  });
  const limit = decision.block ? undefined : decision.limit;
  const announce = limit !== undefined && state.announced !== limit.kind;
  // A loki_status result told the model of a stopped run (the call that stopped it, or any after).
  const tellModel = announce && limit.kind !== 'stopped' && state.modelTold !== limit.kind;
  await store.mutate(
    () => {
      const s = readHookState(store, run.runId);
      store.records.write(HOOK_STATE_FILE, HOOK_STATE_RECORD, {
        ...s,
        stopBlocks: decision.block ? nextStopBlock(s.stopBlocks, run.iteration, s.toolCalls) : null,
        announced: limit?.kind ?? null,
        modelTold: limit ? (tellModel ? limit.kind : (s.modelTold ?? null)) : null,
        updatedAt: new Date().toISOString(),
      });
    },
    () =>
      decision.block ? undefined : { action: 'hook.stop-allowed', target: run.runId, data: { why: decision.why } },
  );
  const prefix = toolPrefix(project.root, project.env);
  if (decision.block) return { decision: 'block', reason: hostNames(decision.reason, prefix) };
  // Let go without a limit (no tool call since the block, or the backstop): the run is still active, and the user
  // should know the loop ended there rather than think it finished.
  if (!limit && run.status === 'active')
    return { systemMessage: `Loki Mode let the agent stop: ${decision.why}. Run ${run.runId} is still active.` };
  if (!announce) return null;
  return {
    systemMessage: `Loki Mode let the agent stop: ${limit.text}; ${LIMIT_REMEDY[limit.kind]}.`,
    ...(tellModel && {
      hookSpecificOutput: {
        hookEventName: 'Stop',
        additionalContext: `Loki Mode run ${run.runId} is halted: ${limit.text}. Start nothing new: tell the user in one line where the run stands, then end your turn.`,
      },
    }),
  };
}

export async function sessionEnd(project: Project, _input: HookInput): Promise<HookOutput> {
  const store = project.existingStore();
  if (store) await endGoneSessions(store);
  return null;
}
