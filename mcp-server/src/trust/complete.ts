/**
 * loki_complete, the completion gate. Calling it claims completion (the held-out items are revealed and judged).
 * It gathers the facts itself (the latest verification against the code now, every machine check run again,
 * the council), and either accepts (writes the receipt, marks the run completed) or answers CONTINUE with every
 * blocking reason, which loki_status then shows as findings until the next attempt.
 */
import { completionGate, type GateResult } from '../domain/evidence.js';
import type { Headline } from '../domain/evidence.js';
import type { Project } from '../project.js';
import { RUN_FILE, RUN_RECORD } from '../run/records.js';
import type { SessionIdentity } from '../run/sessions.js';
import { UsageError, activeRun, readRun } from '../run/state.js';
import { evaluateChecklist, revealHeldOut } from './checklist.js';
import { councilFacts, latestCouncil } from './council.js';
import { latestFacts } from './facts.js';
import { writeReceipt } from './receipt.js';
import { codeState, updateTrust } from './state.js';

export interface CompleteResult {
  status: 'COMPLETE' | 'CONTINUE';
  runId: string;
  reasons: string[];
  headline: Headline | null;
  receipt: string | null;
  /** Each checklist item's verdict (held-out ones included: completion has been claimed). */
  items: GateResult['items'];
}

export async function completeRun(project: Project, who: SessionIdentity): Promise<CompleteResult> {
  const config = project.config();
  const run = activeRun(project, 'completing');
  const store = project.openStore();
  await updateTrust(project, run.runId, (t) => ({ next: { ...t, claimedAt: t.claimedAt ?? new Date().toISOString() }, result: undefined }));
  await revealHeldOut(project, run.runId);
  const facts = latestFacts(project, run.runId);
  const now = codeState(run, project.root);
  const checklist = await evaluateChecklist(project, run.runId, facts);
  const council = latestCouncil(store, run.runId);
  const gate = completionGate({ councilEnabled: config.council.enabled, codeState: now, verification: facts, checklist: checklist ?? null, council: council ? councilFacts(council) : null });

  if (!gate.accepted) {
    await updateTrust(project, run.runId, (t) => ({
      next: { ...t, findings: gate.reasons, findingsAt: new Date().toISOString(), attempts: t.attempts + 1 },
      result: undefined,
      audit: { action: 'run.complete.refused', data: { by: who.id, reasons: gate.reasons.length, first: gate.reasons[0] } },
    }));
    return { status: 'CONTINUE', runId: run.runId, reasons: gate.reasons, headline: null, receipt: null, items: gate.items };
  }

  return store.mutate(
    'state',
    (): CompleteResult & { manifest: string } => {
      const current = readRun(store);
      if (!current || current.runId !== run.runId || current.status !== 'active') throw new UsageError('the run changed while completing; call loki_status and try again');
      const receipt = writeReceipt(store, {
        run: current,
        root: project.root,
        codeState: now,
        facts: facts!,
        gate,
        checklist: checklist?.items ?? [],
        council: council ? councilFacts(council) : null,
        councilEnabled: config.council.enabled,
      });
      const at = new Date().toISOString();
      store.records.write(RUN_FILE, RUN_RECORD, { ...current, status: 'completed', updatedAt: at, stopReason: null });
      return { status: 'COMPLETE', runId: run.runId, reasons: [], headline: receipt.headline, receipt: `.loki/${receipt.dir}/RECEIPT.md`, items: gate.items, manifest: receipt.manifestSha256 };
    },
    (r) => ({ action: 'run.complete', target: r.runId, data: { headline: r.headline, manifest: r.manifest, receipt: r.receipt, by: who.id } }),
  ).then(async ({ manifest: _m, ...r }) => {
    await updateTrust(project, run.runId, (t) => ({ next: { ...t, findings: [], findingsAt: new Date().toISOString() }, result: undefined }));
    return r;
  });
}
