/**
 * A person's waivers of open work (`loki waive`; rules in domain/waivers.ts). Read by the completion gate, the
 * phase machine and the receipt; written only by the human CLI. No MCP tool reaches `addWaiver`, and it refuses
 * any process but the CLI, so an agent cannot excuse its own unfinished work through the server. Each waiver is
 * one write-once document and one `run.waive` audit entry whose actor names a person.
 */
import { planWaiver, type WaiverKind, type WorkFacts, type WorkWaiver } from '../domain/waivers.js';
import type { Project } from '../project.js';
import type { RunState } from '../run/records.js';
import { isPersonSurface, personAt, viaSurface } from '../run/person.js';
import { readRun } from '../run/state.js';
import { waiveItemsIn } from './checklist.js';
import type { Store } from '../store/store.js';
import { WAIVER_RECORD, waiverDir, waiverFile } from './records.js';
import { UsageError } from '../errors.js';

const WAIVER_ID = /^w(\d{3,})$/;

/** The run's waivers, oldest first. */
export function readWaivers(store: Store | undefined, runId: string): WorkWaiver[] {
  if (!store) return [];
  const n = (w: WorkWaiver) => Number(WAIVER_ID.exec(w.id)?.[1] ?? 0);
  return store.records
    .list(waiverDir(runId), WAIVER_RECORD)
    .filter((w) => w.runId === runId)
    .sort((a, b) => n(a) - n(b));
}

/** What the gate judges the work by: the run's phase and tier, every task of the run, the waivers. */
export function workFacts(project: Project, run: RunState): WorkFacts {
  const store = project.openStore();
  return {
    tier: run.tier,
    phase: run.phase,
    tasks: project
      .tasks()
      .list()
      .tasks.filter((t) => t.runId === run.runId)
      .map((t) => ({ id: t.id, status: t.status, phase: t.phase })),
    waivers: readWaivers(store, run.runId),
  };
}

/** Task ids a person waived in this run (they hold no phase either). */
export function waivedTaskIds(store: Store | undefined, runId: string): Set<string> {
  return new Set(readWaivers(store, runId).flatMap((w) => w.tasks));
}

const NO_RUN = 'no run yet in this project (the agent starts one with loki_start)';

/**
 * Record a person's waiver of checklist items (`loki waive item ID... --reason`): one waiver document and one
 * `run.waive` entry whose actor is the person, as addWaiver; the checklist marks each item waived with the reason
 * and the waiver's id. The items a person may waive are those the agent may (trust/checklist.ts waiveItemsIn): a
 * person gets no override here, since the server cannot tell a person at the CLI from the agent's shell and a
 * held-out item is the council's to judge.
 */
export function waiveItems(project: Project, ids: readonly string[], reason: string): WorkWaiver {
  if (!isPersonSurface(project.actor))
    throw new UsageError('only a person can waive work, with `loki waive` at the command line or the dashboard');
  const who = personAt(project, 'waive checklist items');
  const config = project.config();
  const store = project.existingStore();
  if (!store) throw new UsageError(NO_RUN);
  return store.mutate(
    (): WorkWaiver => {
      const run = readRun(store);
      if (!run) throw new UsageError(NO_RUN);
      if (run.status === 'completed')
        throw new UsageError(`run ${run.runId} is completed already; a waiver can no longer change it`);
      const plan = planWaiver('item', ids, reason, workFacts(project, run));
      const items = [...new Set(ids)];
      const last = readWaivers(store, run.runId).at(-1);
      const n = last ? Number(WAIVER_ID.exec(last.id)![1]) + 1 : 1;
      const waiver: WorkWaiver = {
        id: `w${String(n).padStart(3, '0')}`,
        runId: run.runId,
        kind: 'item',
        tasks: [],
        phase: null,
        items,
        reason: plan.reason,
        at: new Date().toISOString(),
        grantedBy: { kind: 'person', user: who.user, via: viaSurface(project.actor, 'loki waive') },
      };
      waiveItemsIn(store, run.runId, items, plan.reason, waiver.id, config.council.enabled);
      if (!store.records.create(waiverFile(run.runId, waiver.id), WAIVER_RECORD, waiver))
        throw new UsageError('another waiver was recorded at the same moment; run the command again');
      return waiver;
    },
    (w) => ({
      action: 'run.waive',
      target: w.runId,
      actor: who.actor,
      data: { waiver: w.id, kind: w.kind, items: w.items, reason: w.reason, by: 'person' },
    }),
  );
}

/** Record a person's waiver (the `loki` CLI only), checked against the run as it is inside the transaction. */
export function addWaiver(project: Project, kind: WaiverKind, tasks: readonly string[], reason: string): WorkWaiver {
  if (!isPersonSurface(project.actor))
    throw new UsageError('only a person can waive work, with `loki waive` at the command line or the dashboard');
  // No .loki/ yet is no run yet: refused without creating it.
  const store = project.existingStore();
  if (!store) throw new UsageError(NO_RUN);
  const who = personAt(project, 'waive work');
  return store.mutate(
    (): WorkWaiver => {
      const run = readRun(store);
      if (!run) throw new UsageError(NO_RUN);
      if (run.status === 'completed')
        throw new UsageError(`run ${run.runId} is completed already; a waiver can no longer change it`);
      const plan = planWaiver(kind, tasks, reason, workFacts(project, run));
      const last = readWaivers(store, run.runId).at(-1);
      const n = last ? Number(WAIVER_ID.exec(last.id)![1]) + 1 : 1;
      const waiver: WorkWaiver = {
        id: `w${String(n).padStart(3, '0')}`,
        runId: run.runId,
        kind,
        tasks: plan.tasks,
        phase: plan.phase,
        reason: plan.reason,
        at: new Date().toISOString(),
        grantedBy: { kind: 'person', user: who.user, via: viaSurface(project.actor, 'loki waive') },
      };
      if (!store.records.create(waiverFile(run.runId, waiver.id), WAIVER_RECORD, waiver))
        throw new UsageError('another waiver was recorded at the same moment; run the command again');
      return waiver;
    },
    (w) => ({
      action: 'run.waive',
      target: w.runId,
      actor: who.actor,
      data: { waiver: w.id, kind: w.kind, tasks: w.tasks, phase: w.phase, reason: w.reason, by: 'person' },
    }),
  );
}
