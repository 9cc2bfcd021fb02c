/**
 * What the hooks remember between calls (the `hooks` document): the Stop hook's last block, the limit the user and
 * the model were told of, how far the host transcript has been read and the usage it added up, tool calls counted,
 * and the notices loki_status shows.
 */
import * as z from 'zod/mini';
import { NO_USAGE, type Usage } from '../domain/autonomy.js';
import type { RecordType } from '../store/records.js';
import type { Store } from '../store/store.js';

const amount = z.number().check(z.nonnegative());

const usage = z.strictObject({
  inputTokens: amount,
  outputTokens: amount,
  cacheWriteTokens: amount,
  cacheReadTokens: amount,
  costUsd: amount,
  contextTokens: amount,
});

const hookState = z.strictObject({
  runId: z.nullable(z.string()),
  stopBlocks: z.nullable(
    z.strictObject({ iteration: z.int(), toolCalls: z.optional(z.int().check(z.nonnegative())), count: z.int() }),
  ),
  /**
   * The limit (domain/autonomy.ts Limit kind) the user and the model were last told of, so each is said once while
   * it holds, not at every stop or tool call; cleared when the limit goes.
   */
  announced: z.optional(z.nullable(z.string())),
  modelTold: z.optional(z.nullable(z.string())),
  /** Per transcript file: bytes already read. Usage is the sum over every transcript of the run. */
  transcripts: z.record(z.string(), z.strictObject({ offset: z.int().check(z.nonnegative()), ino: z.number() })),
  usage,
  toolCalls: z.int().check(z.nonnegative()),
  /** Context size and spend over the run, a sample each time the context changed (the dashboard's timeline). */
  timeline: z.optional(z.array(z.strictObject({ at: z.string(), contextTokens: amount, costUsd: amount }))),
  notices: z.array(z.string()),
  updatedAt: z.string(),
});

export type HookState = z.infer<typeof hookState>;
export type UsageSample = NonNullable<HookState['timeline']>[number];

/** Samples kept: the oldest go first, so the timeline shows the run's latest stretch at most this long. */
export const TIMELINE_SAMPLES = 240;

/** The timeline with `usage` added when the context size moved (every tool call would mostly repeat itself). */
export function withSample(s: HookState, usage: Usage, at: string): UsageSample[] {
  const timeline = s.timeline ?? [];
  const last = timeline.at(-1);
  if (last && last.contextTokens === usage.contextTokens) return timeline;
  return [...timeline, { at, contextTokens: usage.contextTokens, costUsd: usage.costUsd }].slice(-TIMELINE_SAMPLES);
}
export const HOOK_STATE_RECORD: RecordType<HookState> = { kind: 'hooks', schema: hookState };
export const HOOK_STATE_FILE = 'hooks';

/** The hooks' state for this run (a new run starts from zero). */
export function readHookState(store: Store | undefined, runId: string | null): HookState {
  const s = store?.records.read(HOOK_STATE_FILE, HOOK_STATE_RECORD);
  if (s && s.runId === runId) return s;
  return {
    runId,
    stopBlocks: null,
    announced: null,
    modelTold: null,
    transcripts: {},
    usage: { ...NO_USAGE } as Usage,
    toolCalls: 0,
    notices: [],
    updatedAt: new Date(0).toISOString(),
  };
}
