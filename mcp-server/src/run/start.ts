/** loki_start: begin a run from a spec, or resume the active one. */
import crypto from 'node:crypto';
import { itemsFromSpec, withoutHeldOut, type ChecklistItem } from '../domain/checklist.js';
import { classifyComplexity, specSignals } from '../domain/complexity.js';
import { tasksFromSpec, type SpecKind, type SpecTasks } from '../domain/spec-tasks.js';
import { checkSeedDrafts } from '../domain/tasks.js';
import type { Tier } from '../domain/phases.js';
import type { Project } from '../project.js';
import path from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { createChecklist } from '../trust/checklist.js';
import { TRUST_FILE, TRUST_RECORD, emptyTrust } from '../trust/records.js';
import { trustSettings } from '../trust/state.js';
import { SafeDir } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { recordBaseline, treeOf, updateRef } from './git.js';
import { RUN_FILE, RUN_RECORD, archivedRunKey, type RunState, type SessionState, type SpecInfo } from './records.js';
import { repoSignals } from './repo.js';
import { type SessionIdentity, writeSession } from './sessions.js';
import { readMarkers } from './signals.js';
import { MAX_SPEC_BYTES, readSpecFile, specFromText } from './spec.js';
import { readRun } from './state.js';
import { UsageError } from '../errors.js';

const NO_RUN_YET =
  'no run yet: give `spec` (a path inside the project, e.g. "docs/prd.md") or `specText` (the brief itself)';

export interface StartArgs {
  spec?: string | undefined;
  specText?: string | undefined;
  tier?: Tier | undefined;
  restart?: boolean | undefined;
}

export interface StartResult {
  resumed: boolean;
  run: RunState;
  archivedRunId: string | null;
  session: SessionState;
  /** Tasks queued from the spec by this call (none when resuming a run that has its tasks). */
  tasks: { queued: number; kind: SpecKind | null; notes: string[] };
}

/**
 * `actor` names who started it in the audit log when it is not the process's own actor: a person at `loki run`
 * (`person:<user> via cli:<pid>`), as loki_start records the agent's session process.
 */
export async function startRun(
  project: Project,
  args: StartArgs,
  who: SessionIdentity,
  opts: { actor?: string } = {},
): Promise<StartResult> {
  if (args.spec !== undefined && args.specText !== undefined) {
    throw new UsageError('give either `spec` (a path inside the project) or `specText`, not both');
  }
  const config = project.config();
  if (readMarkers(project.existingStore()).stop) {
    throw new UsageError(
      '.loki/STOP is present: the user asked the run to stop. Run `loki resume` (or delete .loki/STOP) before starting again',
    );
  }
  // The spec is read and parsed before .loki/ is created or anything is written, so a bad one changes nothing.
  const specInput =
    args.spec !== undefined
      ? readSpecFile(SafeDir.open(project.root), args.spec)
      : args.specText !== undefined
        ? specFromText(args.specText)
        : undefined;
  const seed = specInput ? seedFromSpec(specInput.text, specInput.extension) : undefined;
  if (seed) checkSeedDrafts(seed.tasks);
  if (!specInput && !project.hasStore()) throw new UsageError(NO_RUN_YET);
  const store = project.openStore();
  const queue = project.tasks();

  let baselineKeptFrom: string | null = null;
  return store.mutate(
    () => {
      baselineKeptFrom = null;
      const existing = readRun(store);
      const resumable = existing && existing.status !== 'completed' && !args.restart;
      if (existing && resumable) {
        if (specInput && existing.spec && specInput.sha256 !== existing.spec.sha256) {
          throw new UsageError(
            `a run (${existing.runId}) is already in progress with a different spec; omit \`spec\` to resume it, ` +
              'or pass `restart: true` to archive it and start a new run',
          );
        }
        const now = new Date().toISOString();
        const run: RunState =
          existing.status === 'stopped'
            ? { ...existing, status: 'active', stoppedAt: null, stopReason: null, updatedAt: now }
            : existing;
        if (run !== existing) store.records.write(RUN_FILE, RUN_RECORD, run);
        const session = writeSession(store, run.runId, who, now);
        // A crash between recording the run and queueing its tasks leaves an empty queue: queue them now.
        const reseed = seed ?? specTasksOfRun(store, run);
        const list = reseed && createChecklist(store, run.runId, reseed.checklist, now, project.env);
        const added =
          reseed && list
            ? queue.seedIn(run.runId, withoutHeldOut(reseed.tasks, list.items), { fresh: false })
            : undefined;
        return {
          resumed: true,
          run,
          archivedRunId: null,
          session,
          tasks: {
            queued: added?.added.length ?? 0,
            kind: added?.added.length ? (reseed?.kind ?? null) : null,
            notes: added?.added.length ? (reseed?.notes ?? []) : [],
          },
        };
      }
      if (!specInput) {
        throw new UsageError(
          existing
            ? `the last run (${existing.runId}) is ${existing.status}; give \`spec\` or \`specText\` to start a new one`
            : NO_RUN_YET,
        );
      }
      let archivedRunId: string | null = null;
      if (existing) {
        const archived: RunState =
          existing.status === 'active'
            ? { ...existing, status: 'stopped', stoppedAt: new Date().toISOString(), stopReason: 'restarted' }
            : existing;
        store.records.write(archivedRunKey(existing.runId), RUN_RECORD, archived);
        archivedRunId = existing.runId;
      }
      const now = new Date();
      const runId = `r-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${crypto.randomBytes(4).toString('hex')}`;
      const copy = `spec/${runId}${specInput.extension}`;
      writeFileAtomic(store.loki, copy, specInput.text, { mode: 0o600 });
      const spec: SpecInfo = {
        source: specInput.source,
        path: specInput.path,
        copy,
        sha256: specInput.sha256,
        bytes: specInput.bytes,
        title: specInput.title,
      };
      const tier = decideTier(args.tier, config.complexity, specInput.text, specInput.extension, project.root);
      const iso = now.toISOString();
      const run: RunState = {
        runId,
        status: 'active',
        startedAt: iso,
        updatedAt: iso,
        stoppedAt: null,
        stopReason: null,
        spec,
        tier: tier.tier,
        tierSource: tier.source,
        tierReasons: tier.reasons,
        phase: 'BOOTSTRAP',
        phaseEnteredAt: iso,
        phaseHistory: [],
        iteration: 0,
        git:
          existing && existing.status !== 'completed' && auditedBaseline(store, existing)
            ? keptBaseline(project.root, runId, existing)
            : recordBaseline(project.root, runId),
      };
      if (existing && run.git.baselineCommit !== null && run.git.baselineCommit === existing.git.baselineCommit)
        baselineKeptFrom = existing.runId;
      store.records.write(RUN_FILE, RUN_RECORD, run);
      const session = writeSession(store, runId, who, iso);
      const list = createChecklist(store, runId, seed!.checklist, iso, project.env);
      store.records.write(TRUST_FILE, TRUST_RECORD, { ...emptyTrust(runId), settings: trustSettings(config) });
      // The held-out items are taken out of the tasks the builder will read.
      const added = queue.seedIn(runId, withoutHeldOut(seed!.tasks, list.items), { fresh: true });
      return {
        resumed: false,
        run,
        archivedRunId,
        session,
        tasks: { queued: added.added.length, kind: seed!.kind, notes: seed!.notes },
      };
    },
    (r) => ({
      action: r.resumed ? 'run.resume' : 'run.start',
      target: r.run.runId,
      ...(opts.actor ? { actor: opts.actor } : {}),
      data: r.resumed
        ? { session: r.session.id, ...(r.tasks.queued > 0 ? { tasks: r.tasks.queued } : {}) }
        : {
            session: r.session.id,
            tier: r.run.tier,
            spec: r.run.spec && { source: r.run.spec.source, path: r.run.spec.path, sha256: r.run.spec.sha256 },
            baseline: r.run.git.baselineCommit,
            // The tree too, so the code the run started from is named in the chain, not only in the run record.
            baselineTree: r.run.git.baselineCommit ? treeOf(project.root, r.run.git.baselineCommit) : null,
            ...(baselineKeptFrom ? { baselineKeptFrom } : {}),
            archived: r.archivedRunId,
            tasks: r.tasks.queued,
          },
    }),
  );
}

/**
 * A restart keeps the first baseline: the run it replaces was never accepted, so the new one is measured from
 * where that one started (which may itself be a restart's kept baseline), whatever its spec. The other choice, a
 * fresh baseline with every restart listed in the receipt, would make whatever was done before the restart (a
 * test deleted, emptied or skipped, a secret written) the new starting point: it would vanish from every measure
 * and only an attentive reader of the receipt could find it. Kept, it is measured like any other change: a test
 * file deleted before the restart still counts as deleted. The receipt also lists the runs a restart replaced.
 * Only the run after a completed one gets a baseline of its own (the code was accepted up to there).
 */
/**
 * True when the audit log recorded `previous`'s baseline when that run started: only a baseline the server itself
 * took is kept (a run record written into the database by other means names whatever its writer wanted).
 */
function auditedBaseline(store: Store, previous: RunState): boolean {
  const row = store.db.get<{ baseline: string | null }>(
    "SELECT data ->> '$.baseline' AS baseline FROM audit WHERE action = 'run.start' AND target = ? ORDER BY seq LIMIT 1",
    previous.runId,
  );
  return row !== undefined && row.baseline === previous.git.baselineCommit;
}

function keptBaseline(root: string, runId: string, previous: RunState): RunState['git'] {
  const kept = previous.git.baselineCommit;
  if (!previous.git.repository || !kept) return recordBaseline(root, runId);
  const problem = updateRef(root, `refs/loki/runs/${runId}/baseline`, kept);
  return {
    ...previous.git,
    note: `baseline kept from run ${previous.runId}: a restart keeps the first baseline${problem ? ` (its ref for this run could not be written: ${problem.trim()})` : ''}`,
  };
}

function decideTier(
  argument: Tier | undefined,
  configured: 'auto' | Tier,
  specText: string,
  extension: string,
  root: string,
): { tier: Tier; source: RunState['tierSource']; reasons: string[] } {
  if (argument) return { tier: argument, source: 'argument', reasons: ['set by the loki_start `tier` argument'] };
  if (configured !== 'auto')
    return { tier: configured, source: 'configured', reasons: ['set by LOKI_COMPLEXITY / run.complexity'] };
  const d = classifyComplexity(specSignals(specText, extension), repoSignals(root));
  return { tier: d.tier, source: 'detected', reasons: d.reasons };
}

interface Seed extends SpecTasks {
  checklist: ChecklistItem[];
}

/** The spec's tasks and checklist (its held-out items are drawn with the run, in createChecklist). */
function seedFromSpec(text: string, extension: string): Seed {
  const spec = tasksFromSpec(text, extension);
  return { ...spec, checklist: itemsFromSpec(spec.tasks, new Date().toISOString()) };
}

/** The seed of a run's recorded spec copy (undefined when there is none or it no longer parses). */
function specTasksOfRun(store: Store, run: RunState): Seed | undefined {
  if (!run.spec) return undefined;
  const text = readFileIfExists(store.loki, run.spec.copy, MAX_SPEC_BYTES)?.toString('utf8');
  if (text === undefined) return undefined;
  try {
    return seedFromSpec(text, path.extname(run.spec.copy));
  } catch {
    return undefined;
  }
}
