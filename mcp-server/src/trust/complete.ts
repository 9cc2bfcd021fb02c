/**
 * loki_complete, the completion gate. It gathers the facts itself (the run's tasks and phase with a person's
 * waivers, the latest verification against the code now, every machine check run again, the council) and either
 * accepts (writes the receipt, records it in the audit log, marks the run completed) or answers CONTINUE with every
 * blocking reason, which loki_status then shows as findings until the next attempt.
 *
 * Claiming completion reveals the held-out items, but only once the facts hold (a verification of the current code
 * with nothing blocking): an agent cannot call loki_complete early just to read them.
 */
import { completionGate, type GateResult } from '../domain/evidence.js';
import type { Headline } from '../domain/evidence.js';
import type { Project } from '../project.js';
import { tamperEvidence } from '../store/bindings.js';
import { RUN_FILE, RUN_RECORD } from '../run/records.js';
import type { SessionIdentity } from '../run/sessions.js';
import { activeRun, readRun } from '../run/state.js';
import { evaluateChecklist, readChecklist, revealHeldOut } from './checklist.js';
import { dropHeldOut } from './held-out.js';
import { councilFacts, latestCouncil, listCouncils } from './council.js';
import { latestFacts } from './facts.js';
import { writeReceipt } from './receipt.js';
import { checklistFingerprint, codeState, readTrust, trustSettings, updateTrust } from './state.js';
import { workFacts } from './waivers.js';
import { judgeWork } from '../domain/waivers.js';
import { UsageError } from '../errors.js';

export interface CompleteResult {
  status: 'COMPLETE' | 'CONTINUE';
  runId: string;
  reasons: string[];
  headline: Headline | null;
  receipt: string | null;
  /** Each checklist item's verdict (held-out ones only once revealed). */
  items: GateResult['items'];
}

export async function completeRun(project: Project, who: SessionIdentity): Promise<CompleteResult> {
  const config = project.config();
  const run = activeRun(project, 'completing');
  const store = project.openStore();
  const facts = latestFacts(project, run.runId);
  const now = codeState(run, project.root);
  const factsHold = facts !== null && facts.codeState === now && facts.blocking.length === 0;
  if (factsHold) {
    await updateTrust(project, run.runId, (t) => ({
      next: { ...t, claimedAt: t.claimedAt ?? new Date().toISOString() },
      result: undefined,
    }));
    await revealHeldOut(project, run.runId);
  }
  const checklist = await evaluateChecklist(project, run.runId, facts);
  const council = latestCouncil(store, run.runId);
  const work = workFacts(project, run);
  const gate = completionGate({
    work,
    councilEnabled: config.council.enabled,
    codeState: now,
    verification: facts,
    checklist: checklist ?? null,
    council: council ? councilFacts(council) : null,
    checklistFingerprint: checklistFingerprint(checklist),
  });
  // The facts above are only as good as the records they were read from: any sign that the state was changed
  // outside loki-mode refuses completion (store/bindings.ts).
  for (const t of tamperEvidence(store))
    gate.reasons.push(`tamper evidence: ${t}. Restore .loki/ from a checkpoint or start a new run (docs/trust.md)`);
  const settings = readTrust(store, run.runId).settings;
  if (settings !== null && settings !== trustSettings(config)) {
    gate.reasons.push(
      `the checks or council settings changed since the run started (from ${settings} to ${trustSettings(config)}): restore .loki/config.yaml and the LOKI_* variables, or start a new run`,
    );
  }
  // Before the reveal, held-out items stay out of the answer (their reasons included).
  const shown = checklist?.revealedAt ? gate.items : gate.items.filter((i) => !i.heldOut);
  const reasons = checklist?.revealedAt
    ? gate.reasons
    : gate.reasons.filter((r) => !gate.items.some((i) => i.heldOut && !i.verdict.ok && i.verdict.reason === r));

  if (reasons.length > 0) {
    await updateTrust(project, run.runId, (t) => ({
      next: { ...t, findings: reasons, findingsAt: new Date().toISOString(), attempts: t.attempts + 1 },
      result: undefined,
      audit: { action: 'run.complete.refused', data: { by: who.id, reasons: reasons.length, first: reasons[0] } },
    }));
    return { status: 'CONTINUE', runId: run.runId, reasons, headline: null, receipt: null, items: shown };
  }

  // Decided outside the transaction (the checks take time); inside it, nothing the decision rests on may have moved.
  const basis = {
    verification: facts!.id,
    council: council ? `${council.id}:${council.outcome}` : null,
    checklist: checklistFingerprint(checklist),
  };
  const result = store.tx((): CompleteResult => {
    const current = readRun(store);
    if (!current || current.runId !== run.runId || current.status !== 'active')
      throw new UsageError('the run changed while completing; call loki_status and try again');
    const latest = latestCouncil(store, run.runId);
    const moved =
      latestFacts(project, run.runId)?.id !== basis.verification ||
      (latest ? `${latest.id}:${latest.outcome}` : null) !== basis.council ||
      checklistFingerprint(readChecklist(store, run.runId)) !== basis.checklist;
    if (moved)
      throw new UsageError(
        'another session verified, convened or edited the checklist while completing: call loki_complete again',
      );
    // The work as it is now: a task added, reopened or moved meanwhile counts.
    const workNow = workFacts(project, current);
    if (judgeWork(workNow).reasons.length > 0)
      throw new UsageError('tasks or the phase changed while completing: call loki_complete again');
    const receipt = writeReceipt(store, {
      run: current,
      root: project.root,
      codeState: now,
      facts: facts!,
      gate,
      checklist: checklist?.items ?? [],
      heldOutSet: checklist?.heldOutSet,
      council: council ? councilFacts(council) : null,
      councils: listCouncils(store, run.runId).map(councilFacts),
      councilEnabled: config.council.enabled,
      work: { facts: workNow, verdict: judgeWork(workNow) },
    });
    // The receipt's audit entry and the completed status commit together; a crash before the commit leaves an
    // active run whose next loki_complete writes (and anchors) the receipt again.
    store.audit.append('run.complete', run.runId, {
      headline: receipt.headline,
      manifest: receipt.manifestSha256,
      receipt: `.loki/${receipt.dir}/RECEIPT.md`,
      by: who.id,
    });
    store.records.write(RUN_FILE, RUN_RECORD, {
      ...current,
      status: 'completed',
      updatedAt: new Date().toISOString(),
      stopReason: null,
    });
    return {
      status: 'COMPLETE',
      runId: run.runId,
      reasons: [],
      headline: receipt.headline,
      receipt: `.loki/${receipt.dir}/RECEIPT.md`,
      items: gate.items,
    };
  });
  await updateTrust(project, run.runId, (t) => ({
    next: { ...t, findings: [], findingsAt: new Date().toISOString() },
    result: undefined,
  }));
  // The run is accepted: its held-out set, kept until now for a rollback to before the reveal, is done with.
  if (result.status === 'COMPLETE') dropHeldOut(store.lokiHome, store.project.root, run.runId);
  return result;
}
