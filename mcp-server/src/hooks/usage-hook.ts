/**
 * The PostToolUse hook on its own (it runs after every tool call): count the call, add up spend and context size
 * from the new lines of the host's transcript, pause the run at the budget, and tell the model once when a limit
 * halts the run (STOP, PAUSE, the budget, the iteration limit). It opens the store directly, not a Project, so it
 * loads no queue, trust or memory code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE, resolveConfig, typedConfig } from '../config/load.js';
import { addTranscriptUsage, reachedLimit, usageNotices } from '../domain/autonomy.js';
import { scrubStoredData } from '../domain/secrets.js';
import { lokiHomeDir } from '../home.js';
import { PAUSE, readMarkers, writeMarker } from '../run/signals.js';
import { readRun } from '../run/state.js';
import { readFileIfExists } from '../store/fsx.js';
import { Store } from '../store/store.js';
import type { HookInput, HookOutput } from './io.js';
import { HOOK_STATE_FILE, HOOK_STATE_RECORD, readHookState, withSample } from '../run/hook-state.js';
import { ConfigError } from '../errors.js';

/** Bytes of transcript read per call at most (the rest is read on the next calls). */
const TRANSCRIPT_CHUNK = 8 * 1024 * 1024;

export async function usageHook(root: string, env: NodeJS.ProcessEnv, input: HookInput): Promise<HookOutput> {
  try {
    if (!fs.lstatSync(path.join(root, '.loki')).isDirectory()) return null;
  } catch {
    return null;
  }
  const store = Store.open(root, lokiHomeDir(env), `hook:${process.pid}`, scrubStoredData);
  try {
    return await track(store, env, input);
  } finally {
    store.close();
  }
}

async function track(store: Store, env: NodeJS.ProcessEnv, input: HookInput): Promise<HookOutput> {
  const run = readRun(store);
  if (!run || run.status !== 'active') return null;
  const effective = resolveConfig(readFileIfExists(store.loki, CONFIG_FILE, 1024 * 1024)?.toString('utf8'), env);
  if (effective.problems.length > 0) throw new ConfigError(effective.problems);
  const config = typedConfig(effective);
  const step = await store.mutate(
    () => {
      const s = readHookState(store, run.runId);
      let usage = s.usage;
      const transcripts = { ...s.transcripts };
      const file = input.transcript_path;
      if (file) {
        const read = readTranscript(file, transcripts[file]);
        if (read) {
          usage = addTranscriptUsage(usage, read.text);
          transcripts[file] = { offset: read.offset, ino: read.ino };
        }
      }
      const notices = usageNotices(usage, config.budgetLimitUsd, config.contextWindowTokens);
      const current = readRun(store) ?? run;
      const limit = reachedLimit({
        run: current,
        maxIterations: config.maxIterations,
        ...readMarkers(store),
        budget: { limitUsd: config.budgetLimitUsd, spentUsd: usage.costUsd },
      });
      const tell = limit !== null && s.modelTold !== limit.kind;
      const now = new Date().toISOString();
      store.records.write(HOOK_STATE_FILE, HOOK_STATE_RECORD, {
        ...s,
        usage,
        timeline: withSample(s, usage, now),
        transcripts,
        toolCalls: s.toolCalls + 1,
        notices,
        // Once a limit goes (`loki resume`, a raised limit), the next one is told again.
        modelTold: limit?.kind ?? null,
        announced: limit ? (s.announced ?? null) : null,
        updatedAt: now,
      });
      return {
        paused: config.budgetLimitUsd !== null && usage.costUsd >= config.budgetLimitUsd ? usage.costUsd : null,
        tell: tell ? limit : null,
      };
    },
    () => undefined,
  );
  const paused = step.paused;
  if (paused !== null && !readMarkers(store).pause) {
    await store.mutate(
      () =>
        writeMarker(
          store,
          PAUSE,
          `paused by the budget: $${paused.toFixed(2)} spent of $${config.budgetLimitUsd} (LOKI_BUDGET_LIMIT)`,
        ),
      (wrote) =>
        wrote
          ? {
              action: 'budget.exceeded',
              target: run.runId,
              data: { spentUsd: Number(paused.toFixed(4)), limitUsd: config.budgetLimitUsd },
            }
          : undefined,
    );
  }
  // The model hears of the limit at its next tool call, not only at its next loki_status (PostToolUse context
  // reaches the model; the Stop hook's message to the user does not).
  if (!step.tell) return null;
  return {
    hookSpecificOutput: {
      hookEventName: 'PostToolUse',
      additionalContext: `Loki Mode run ${run.runId} is halted: ${step.tell.text}. Finish the edit in hand, start nothing new, tell the user where the run stands, and end your turn.`,
    },
  };
}

/** New bytes of the host's transcript since `seen` (a replaced or shorter file is read again from the start). */
function readTranscript(
  file: string,
  seen: { offset: number; ino: number } | undefined,
): { text: string; offset: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const start = seen && seen.ino === st.ino && seen.offset <= st.size ? seen.offset : 0;
    const length = Math.min(st.size - start, TRANSCRIPT_CHUNK);
    if (length <= 0) return { text: '', offset: start, ino: st.ino };
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, start);
    // Stop at the last complete line; a line still being written is read next time.
    const text = buf.subarray(0, n).toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    return { text: text.slice(0, end), offset: start + Buffer.byteLength(text.slice(0, end)), ino: st.ino };
  } finally {
    fs.closeSync(fd);
  }
}
