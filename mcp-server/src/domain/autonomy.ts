/**
 * The hooks' decisions, pure: whether the Stop hook keeps the agent working (the autonomy loop, with every limit
 * that lets it end), and what a host transcript says about spend and context size.
 */

/** What ends or halts a run, as the hooks see it. */
export interface LimitFacts {
  run: {
    runId: string;
    status: 'active' | 'completed' | 'stopped';
    iteration: number;
    stopReason: string | null;
  } | null;
  maxIterations: number;
  pause: boolean;
  stop: boolean;
  budget: { limitUsd: number | null; spentUsd: number | null };
}

export interface StopFacts extends LimitFacts {
  /** The host says this stop already follows a block of ours. */
  stopHookActive: boolean;
  /** Tool calls of the run the PostToolUse hook has counted (every tool, not only loki's). */
  toolCalls: number;
  /** Our last block: the run iteration and tool-call count it saw, and blocks since the iteration last moved. */
  lastBlock: StopBlock | null;
  /** The briefing's one next step. */
  next: string;
}

export interface StopBlock {
  iteration: number;
  /** Absent in hook state written before tool calls counted as progress. */
  toolCalls?: number;
  count: number;
}

/**
 * A limit that ended or halted the run. `kind` is stable while the limit holds (the budget's text changes with
 * every call), so each is announced once; `text` says which, for the user and the model.
 */
export interface Limit {
  kind: 'stopped' | 'stop' | 'budget' | 'pause' | 'iterations';
  text: string;
}

/** The limit that ends or halts this run now, or null while it may go on. */
export function reachedLimit(f: LimitFacts): Limit | null {
  const r = f.run;
  if (!r || r.status === 'completed') return null;
  if (r.status === 'stopped')
    return { kind: 'stopped', text: `run ${r.runId} is stopped (${r.stopReason ?? 'stopped'})` };
  if (f.stop) return { kind: 'stop', text: 'STOP requested (.loki/STOP)' };
  // Before PAUSE: reaching the budget also writes PAUSE, and the budget is the reason worth naming.
  if (f.budget.limitUsd !== null && f.budget.spentUsd !== null && f.budget.spentUsd >= f.budget.limitUsd)
    return { kind: 'budget', text: `budget reached: $${f.budget.spentUsd.toFixed(2)} of $${f.budget.limitUsd}` };
  if (f.pause) return { kind: 'pause', text: 'paused (.loki/PAUSE)' };
  if (r.iteration >= f.maxIterations)
    return { kind: 'iterations', text: `iteration limit reached (${r.iteration} of ${f.maxIterations})` };
  return null;
}

/** What the user can do about a limit, after the hook names it. */
export const LIMIT_REMEDY: Readonly<Record<Limit['kind'], string>> = {
  stopped: 'the run is over; a new one starts with a new spec',
  stop: '`loki resume` clears STOP before a new start',
  budget: 'raise LOKI_BUDGET_LIMIT (budget.limitUsd), then `loki resume`',
  pause: '`loki resume` lets it go on',
  iterations: 'raise LOKI_MAX_ITERATIONS (limits.maxIterations) to go on',
};

/**
 * Blocks without a loki_status turn (the iteration did not move) after which the agent is let go: a backstop for
 * an agent that keeps using tools but never comes back to the run, so it is not held forever.
 */
export const MAX_CONSECUTIVE_BLOCKS = 50;

/** `limit`: the stop is allowed because the run ended or halted; the hook says which rather than stop silently. */
export type StopDecision = { block: false; why: string; limit?: Limit } | { block: true; reason: string };

export function decideStop(f: StopFacts): StopDecision {
  const r = f.run;
  if (!r) return { block: false, why: 'no Loki Mode run in this project' };
  if (r.status === 'completed') return { block: false, why: `run ${r.runId} is completed` };
  const limit = reachedLimit(f);
  if (limit) return { block: false, why: limit.text, limit };
  const last = f.lastBlock;
  // Progress is any tool call since the last block (a loki_status turn moves the iteration, which also counts, in
  // case the PostToolUse hook did not run). Only a stop that follows our block without either is let go.
  const progressed =
    !last || r.iteration !== last.iteration || (last.toolCalls !== undefined && f.toolCalls > last.toolCalls);
  if (f.stopHookActive && !progressed)
    return { block: false, why: 'the agent used no tool since the last block; letting it stop rather than loop' };
  if (last && last.iteration === r.iteration && last.count >= MAX_CONSECUTIVE_BLOCKS)
    return { block: false, why: `${last.count} stops blocked without a loki_status turn; letting it stop` };
  return {
    block: true,
    reason: `Loki Mode run ${r.runId} is not finished (iteration ${r.iteration}). Do not stop: call loki_status, then ${f.next}. The run ends only when loki_complete accepts it, or on PAUSE/STOP.`,
  };
}

/** The block the Stop hook records: blocks are counted until a loki_status turn moves the iteration. */
export function nextStopBlock(last: StopBlock | null, iteration: number, toolCalls: number): StopBlock {
  return { iteration, toolCalls, count: last && last.iteration === iteration ? last.count + 1 : 1 };
}

/** USD per million tokens: input, output, cache write, cache read. Matched by model-name substring, first wins. */
export const PRICES: readonly {
  match: RegExp;
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}[] = [
  { match: /opus-4-[5-9]|opus-[5-9]/, input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 },
  { match: /opus/, input: 15, output: 75, cacheWrite: 18.75, cacheRead: 1.5 },
  { match: /sonnet/, input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
  { match: /haiku-4|haiku-[5-9]/, input: 1, output: 5, cacheWrite: 1.25, cacheRead: 0.1 },
  { match: /haiku/, input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 },
];
const FALLBACK_PRICE = PRICES[2]!;
/** The context window assumed when `context.windowTokens` is not read (the settings' default is the same). */
export const CONTEXT_WINDOW = 200_000;
export const CONTEXT_WARN_FRACTION = 0.8;

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  costUsd: number;
  /** Tokens the last assistant message was sent with: the context size. */
  contextTokens: number;
}

export const NO_USAGE: Usage = {
  inputTokens: 0,
  outputTokens: 0,
  cacheWriteTokens: 0,
  cacheReadTokens: 0,
  costUsd: 0,
  contextTokens: 0,
};

/** Add the assistant messages of some transcript lines (JSONL; unknown or torn lines are skipped). */
export function addTranscriptUsage(total: Usage, jsonl: string): Usage {
  let u = { ...total };
  const seen = new Set<string>();
  for (const line of jsonl.split('\n')) {
    if (!line.includes('"usage"')) continue;
    let entry: { message?: { id?: string; model?: string; usage?: Record<string, unknown> } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const m = entry.message;
    const usage = m?.usage;
    if (!usage) continue;
    // A message streamed in several lines repeats its usage: count each message once.
    if (m.id) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
    }
    const n = (k: string) => (typeof usage[k] === 'number' && Number.isFinite(usage[k]) ? (usage[k] as number) : 0);
    const input = n('input_tokens');
    const output = n('output_tokens');
    const write = n('cache_creation_input_tokens');
    const read = n('cache_read_input_tokens');
    const price = PRICES.find((p) => p.match.test(m.model ?? '')) ?? FALLBACK_PRICE;
    u = {
      inputTokens: u.inputTokens + input,
      outputTokens: u.outputTokens + output,
      cacheWriteTokens: u.cacheWriteTokens + write,
      cacheReadTokens: u.cacheReadTokens + read,
      costUsd:
        u.costUsd +
        (input * price.input + output * price.output + write * price.cacheWrite + read * price.cacheRead) / 1_000_000,
      contextTokens: input + write + read,
    };
  }
  return u;
}

/** Notifications for loki_status, from the usage and the limits. */
export function usageNotices(u: Usage, limitUsd: number | null, windowTokens = CONTEXT_WINDOW): string[] {
  const out: string[] = [];
  if (limitUsd !== null && u.costUsd >= limitUsd)
    out.push(
      `budget reached: $${u.costUsd.toFixed(2)} spent of $${limitUsd} (LOKI_BUDGET_LIMIT); the run is paused until the user raises it and runs \`loki resume\``,
    );
  else if (limitUsd !== null && u.costUsd >= 0.8 * limitUsd)
    out.push(`budget: $${u.costUsd.toFixed(2)} of $${limitUsd} spent (over 80%)`);
  if (u.contextTokens >= CONTEXT_WARN_FRACTION * windowTokens) {
    out.push(
      `context is ${Math.round((100 * u.contextTokens) / windowTokens)}% full (${u.contextTokens} tokens): record what matters with loki_memory_record before it is compacted`,
    );
  }
  return out;
}
