/**
 * The trust part of loki_status: the checklist counts the builder may see, the latest verification and council,
 * the findings of the last refused completion, and stagnation. On a counted turn it also tracks stagnation: the
 * same code for `council.stagnationLimit` turns forces a review; for twice that, the run stops, recorded as
 * stagnated (not completed).
 */
import { countItems, visibleItems } from '../domain/checklist.js';
import { councilDue, trackStagnation } from '../domain/council.js';
import type { Phase } from '../domain/phases.js';
import type { LokiConfig } from '../config/load.js';
import type { Project } from '../project.js';
import { RUN_FILE, RUN_RECORD, type RunState } from '../run/records.js';
import { readRun } from '../run/state.js';
import { readChecklist } from './checklist.js';
import { latestCouncil, outcomeOf } from './council.js';
import { latestFacts } from './facts.js';
import { quickFingerprint, readTrust, updateTrust } from './state.js';

export interface TrustBriefing {
  checklist: ReturnType<typeof countItems> | null;
  verification: { id: string; at: string; tests: string; blocking: number } | null;
  council: { id: string; state: string; cast: number; size: number } | null;
  /** Why the last loki_complete was refused (until the next attempt). */
  findings: string[];
  forcedReview: string | null;
  councilDue: boolean;
  /** Turns in a row without a code change. */
  unchangedTurns: number;
  /** Set when this turn stopped the run for stagnation. */
  stagnated: boolean;
}

export async function trustBriefing(
  project: Project,
  run: RunState,
  config: LokiConfig | undefined,
  countTurn: boolean,
): Promise<TrustBriefing> {
  const store = project.existingStore();
  let stagnated = false;
  // While a council is voting the code is meant to stand still: those turns do not count as stagnation.
  const council = latestCouncil(store, run.runId);
  const open = council?.closedAt === null;
  if (countTurn && config && run.status === 'active' && !open)
    stagnated = await trackTurn(project, run, config.council.stagnationLimit);
  const trust = readTrust(store, run.runId);
  const list = readChecklist(store, run.runId);
  const facts = latestFacts(project, run.runId);
  const outcome = council && outcomeOf(council);
  return {
    checklist: list ? countItems(visibleItems(list)) : null,
    verification: facts && { id: facts.id, at: facts.at, tests: facts.tests.verdict, blocking: facts.blocking.length },
    council:
      council && outcome
        ? { id: council.id, state: outcome.state, cast: council.votes.length, size: council.size }
        : null,
    // The reasons of the last refused completion, until a verification after it: then they may be fixed, and the
    // next refusal (if any) says what still holds.
    findings: facts && trust.findingsAt && facts.at > trust.findingsAt ? [] : trust.findings.slice(0, 10),
    forcedReview: trust.forcedReview?.reason ?? null,
    councilDue: config
      ? config.council.enabled && councilDue(run.iteration, config.council.minIterations, config.council.checkInterval)
      : false,
    unchangedTurns: trust.stagnation.unchangedTurns,
    stagnated,
  };
}

/**
 * Phases whose work is not code (reading the spec, requirements, design, planning): an unchanged tree there is the
 * work going as it should, not the agent being stuck, so their turns do not count toward stagnation.
 */
const PHASES_WITHOUT_CODE: ReadonlySet<Phase> = new Set(['BOOTSTRAP', 'DISCOVERY', 'ARCHITECTURE', 'DEEPEN_PLAN']);

/** One turn of stagnation tracking (none in a phase without code work); true when it stopped the run. */
async function trackTurn(project: Project, run: RunState, limit: number): Promise<boolean> {
  if (PHASES_WITHOUT_CODE.has(run.phase)) return false;
  const fingerprint = quickFingerprint(run, project.root);
  if (fingerprint === null) return false;
  const step = await updateTrust(project, run.runId, (t) => {
    const s = trackStagnation(t.stagnation, fingerprint, limit);
    const at = new Date().toISOString();
    const forcedReview =
      s.action === 'force-review' && !t.forcedReview
        ? { reason: `no code change in ${s.stagnation.unchangedTurns} turns`, at, by: 'stagnation' }
        : t.forcedReview;
    return {
      next: { ...t, stagnation: s.stagnation, forcedReview },
      result: s,
      audit:
        forcedReview !== t.forcedReview
          ? { action: 'council.force-review', data: { reason: forcedReview!.reason } }
          : undefined,
    };
  });
  if (step.action !== 'stop') return false;
  const store = project.openStore();
  return store.mutate(
    () => {
      const current = readRun(store);
      if (!current || current.runId !== run.runId || current.status !== 'active') return false;
      const at = new Date().toISOString();
      store.records.write(RUN_FILE, RUN_RECORD, {
        ...current,
        status: 'stopped',
        stoppedAt: at,
        updatedAt: at,
        stopReason: `stagnated: no code change in ${step.stagnation.unchangedTurns} turns`,
      });
      return true;
    },
    (stopped) =>
      stopped
        ? { action: 'run.stagnated', target: run.runId, data: { unchangedTurns: step.stagnation.unchangedTurns } }
        : undefined,
  );
}
