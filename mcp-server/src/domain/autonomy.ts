/**
 * The hooks' decisions, pure: whether the Stop hook keeps the agent working (the autonomy loop, with every limit
 * that lets it end), and what a host transcript says about spend and context size.
 */

export interface StopFacts {
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
  /** The host says this stop already follows a block of ours. */
  stopHookActive: boolean;
  /** Our last block: at which run iteration, and how many blocks in a row. */
  lastBlock: { iteration: number; count: number } | null;
  /** The briefing's one next step. */
  next: string;
}

/** Blocks in a row without a new turn after which the agent is let go (a backstop; the turn check comes first). */
export const MAX_CONSECUTIVE_BLOCKS = 50;

export type StopDecision = { block: false; why: string } | { block: true; reason: string };

export function decideStop(f: StopFacts): StopDecision {
  const r = f.run;
  if (!r) return { block: false, why: 'no Loki Mode run in this project' };
  if (r.status === 'completed') return { block: false, why: `run ${r.runId} is completed` };
  if (r.status === 'stopped') return { block: false, why: `run ${r.runId} is stopped (${r.stopReason ?? 'stopped'})` };
  if (f.stop) return { block: false, why: 'STOP requested (.loki/STOP)' };
  if (f.pause) return { block: false, why: 'paused (.loki/PAUSE)' };
  if (f.budget.limitUsd !== null && f.budget.spentUsd !== null && f.budget.spentUsd >= f.budget.limitUsd) {
    return { block: false, why: `budget reached: $${f.budget.spentUsd.toFixed(2)} of $${f.budget.limitUsd}` };
  }
  if (r.iteration >= f.maxIterations)
    return { block: false, why: `iteration limit reached (${r.iteration} of ${f.maxIterations})` };
  const last = f.lastBlock;
  if (f.stopHookActive && last && last.iteration === r.iteration) {
    return {
      block: false,
      why: 'the agent took no turn (no loki_status) since the last block; letting it stop rather than loop',
    };
  }
  if (last && last.count >= MAX_CONSECUTIVE_BLOCKS)
    return { block: false, why: `${last.count} stops blocked in a row; letting it stop` };
  return {
    block: true,
    reason: `Loki Mode run ${r.runId} is not finished (iteration ${r.iteration}). Do not stop: call loki_status, then ${f.next}. The run ends only when loki_complete accepts it, or on PAUSE/STOP.`,
  };
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
export function usageNotices(u: Usage, limitUsd: number | null): string[] {
  const out: string[] = [];
  if (limitUsd !== null && u.costUsd >= limitUsd)
    out.push(
      `budget reached: $${u.costUsd.toFixed(2)} spent of $${limitUsd} (LOKI_BUDGET_LIMIT); the run is paused until the user raises it and runs \`loki resume\``,
    );
  else if (limitUsd !== null && u.costUsd >= 0.8 * limitUsd)
    out.push(`budget: $${u.costUsd.toFixed(2)} of $${limitUsd} spent (over 80%)`);
  if (u.contextTokens >= CONTEXT_WARN_FRACTION * CONTEXT_WINDOW) {
    out.push(
      `context is ${Math.round((100 * u.contextTokens) / CONTEXT_WINDOW)}% full (${u.contextTokens} tokens): record what matters with loki_memory_record before it is compacted`,
    );
  }
  return out;
}
