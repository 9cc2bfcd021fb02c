/**
 * The evidence receipt under `.loki/proofs/<run>/`: FACTS.json (what the server measured), ASSESSMENTS.json (what
 * agents and the council judged), RECEIPT.md and COMPLETION.txt for people, and MANIFEST.json with the sha256 of
 * each. The manifest's own hash goes into the audit log's `run.complete` entry, and the final code is kept as a
 * commit under refs/loki/runs/<run>/final, so `loki proof verify` can re-hash the receipt, re-derive the diff
 * from the recorded baseline, and notice code that changed since.
 */
import crypto from 'node:crypto';
import type { ChecklistItem, HeldOutSetRef } from '../domain/checklist.js';
import {
  headline as headlineOf,
  type CouncilFacts,
  type GateResult,
  type Headline,
  type VerificationFacts,
} from '../domain/evidence.js';
import { describeWaiver, type WorkFacts, type WorkVerdict, type WorkWaiver } from '../domain/waivers.js';
import { commitSnapshot, git } from '../run/git.js';
import { RUN_RECORD, archivedRunKey, type RunState } from '../run/records.js';
import { listNames, readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { bindingProblems } from '../store/bindings.js';
import type { Store } from '../store/store.js';

export const PROOFS_DIR = 'proofs';
export const RECEIPT_FILES = ['FACTS.json', 'ASSESSMENTS.json', 'RECEIPT.md', 'COMPLETION.txt'] as const;
const MANIFEST = 'MANIFEST.json';

export interface DiffStats {
  files: number;
  insertions: number;
  deletions: number;
}

export interface Manifest {
  runId: string;
  createdAt: string;
  headline: Headline;
  baselineCommit: string | null;
  finalCommit: string | null;
  finalTree: string | null;
  diff: DiffStats | null;
  files: Record<string, string>;
}

export interface ReceiptInput {
  run: RunState;
  root: string;
  codeState: string | null;
  facts: VerificationFacts;
  gate: GateResult;
  checklist: ChecklistItem[];
  /** How the held-out items were chosen and kept (absent for checklists of older versions). */
  heldOutSet?: HeldOutSetRef | undefined;
  /** The council that decided (the latest). */
  council: CouncilFacts | null;
  /** Every council of the run, oldest first: the receipt lists each with its outcome. */
  councils: CouncilFacts[];
  councilEnabled: boolean;
  /** The run's tasks and phase at completion, and the waivers a person gave. */
  work: { facts: WorkFacts; verdict: WorkVerdict };
}

export interface WrittenReceipt {
  dir: string;
  headline: Headline;
  why: string[];
  manifestSha256: string;
  finalCommit: string | null;
}

/** Diff stats between two trees, from git itself (null when either is unknown). */
export function diffStats(root: string, fromCommit: string | null, toTree: string | null): DiffStats | null {
  if (!fromCommit || !toTree) return null;
  const r = git(root, ['diff', '--numstat', '--no-renames', `${fromCommit}^{tree}`, toTree]);
  if (!r.ok) return null;
  const s = { files: 0, insertions: 0, deletions: 0 };
  for (const line of r.out.split('\n').filter(Boolean)) {
    const [a, d] = line.split('\t');
    s.files++;
    s.insertions += Number(a) || 0;
    s.deletions += Number(d) || 0;
  }
  return s;
}

export function writeReceipt(store: Store, input: ReceiptInput): WrittenReceipt {
  const { run, root, facts, gate } = input;
  const dir = `${PROOFS_DIR}/${run.runId}`;
  const createdAt = new Date().toISOString();
  const finalCommit = keepFinalCode(root, run, input.codeState);
  const diff = diffStats(root, run.git.baselineCommit, input.codeState);
  // Only checks the spec stated are facts; a check the agent attached is its own assessment of its item.
  const specChecks = input.checklist.filter((i) => i.check && i.checkFromSpec);
  const agentChecks = input.checklist.filter((i) => i.check && !i.checkFromSpec);
  const checkResults = specChecks.filter((i) => i.status !== 'waived').map((i) => ({ ok: i.result?.ok ?? false }));
  const waivers = input.checklist.filter((i) => i.status === 'waived');
  const { facts: work, verdict } = input.work;
  const usedWaivers = work.waivers.filter((w) => verdict.used.includes(w.id));
  const restarts = restartsOf(store, run);
  const gaps = [
    ...(run.git.repository
      ? []
      : [
          'This project is not a git repository: the server could not measure the code change or deleted and skipped tests, nor tell whether the code changed after the verification and the votes.',
        ]),
    ...(input.councilEnabled ? [] : ['The council was disabled (council.enabled=false): no independent review.']),
    ...(input.heldOutSet?.lost
      ? [
          `The held-out set kept outside the project was ${input.heldOutSet.lost}; every spec item was judged as held out instead.`,
        ]
      : []),
  ];
  const h = headlineOf(
    { ...facts, gaps: [...facts.gaps, ...gaps] },
    checkResults,
    waivers.length,
    usedWaivers.map((w) => personGap(w, verdict)),
  );

  const factsDoc = {
    kind: 'FACTS',
    note: 'Measured by the loki-mode server itself; nothing here is an agent claim.',
    runId: run.runId,
    spec: run.spec && { path: run.spec.path, sha256: run.spec.sha256 },
    git: {
      repository: run.git.repository,
      baselineCommit: run.git.baselineCommit,
      headAtStart: run.git.headSha,
      finalCommit,
      finalTree: input.codeState,
    },
    restarts: restarts.map((r) => ({
      runId: r.runId,
      startedAt: r.startedAt,
      stoppedAt: r.stoppedAt,
      stopReason: r.stopReason,
      spec: r.spec && { path: r.spec.path, sha256: r.spec.sha256 },
      baselineCommit: r.git.baselineCommit,
    })),
    work: {
      tier: work.tier,
      phase: work.phase,
      lastPhase: verdict.lastPhase,
      phaseReached: verdict.phaseReached,
      tasks: work.tasks.length,
      completed: work.tasks.filter((t) => t.status === 'completed').length,
      notDone: verdict.open,
    },
    diff,
    verification: facts,
    heldOut: input.heldOutSet && {
      count: input.heldOutSet.count,
      chosen: input.heldOutSet.seeded ? 'from LOKI_HELD_OUT_SEED' : 'at random, kept outside the project',
      ...(input.heldOutSet.lost ? { lost: input.heldOutSet.lost } : {}),
    },
    machineChecks: specChecks.map((i) => ({
      id: i.id,
      text: i.text,
      heldOut: i.heldOut,
      check: i.check,
      result: i.result,
      waived: i.status === 'waived',
    })),
    cannotKnow: [...facts.gaps, ...gaps],
  };
  const assessmentsDoc = {
    kind: 'ASSESSMENTS',
    note: 'Judgements by agents and the council, and what a person waived. They decide acceptance together with the facts, but never the headline (a waiver only lowers it).',
    checklist: input.checklist
      .filter((i) => !i.check || !i.checkFromSpec || i.status === 'waived')
      .map((i) => ({
        id: i.id,
        text: i.text,
        heldOut: i.heldOut,
        status: i.status,
        note: i.note,
        ...(i.check && !i.checkFromSpec ? { agentCheck: i.check, agentCheckResult: i.result } : {}),
        verdict: gate.items.find((g) => g.id === i.id)?.verdict ?? null,
      })),
    // A checklist item a person waived (`loki waive item`) names the waiver; the others are the agent's.
    waivers: waivers.map((i) => ({
      id: i.id,
      text: i.text,
      reason: i.note,
      by: i.waiver ? `a person at the loki CLI (${i.waiver})` : 'the agent',
    })),
    personWaivers: work.waivers.map((w) => ({
      ...w,
      by: "given at the loki CLI (the server cannot tell a person there from the agent's shell)",
      usedAtCompletion: usedAtCompletion(w, verdict, input.checklist),
    })),
    council: input.council && councilDoc(input.council),
    councils: input.councils.map(councilDoc),
  };
  const receiptMd = renderReceipt(run, h.headline, h.why, facts, diff, input, finalCommit, waivers, {
    specChecks,
    agentChecks,
    restarts,
  });
  const completion = [
    `${h.headline}: run ${run.runId} completed ${createdAt}`,
    `Spec: ${run.spec?.path ?? 'inline text'}${run.spec?.title ? ` "${run.spec.title}"` : ''}`,
    `Receipt: .loki/${dir}/RECEIPT.md (check it with: loki proof verify ${run.runId})`,
    ...h.why.map((w) => `- ${w}`),
    '',
  ].join('\n');
  const contents: Record<(typeof RECEIPT_FILES)[number], string> = {
    'FACTS.json': `${JSON.stringify(factsDoc, null, 2)}\n`,
    'ASSESSMENTS.json': `${JSON.stringify(assessmentsDoc, null, 2)}\n`,
    'RECEIPT.md': receiptMd,
    'COMPLETION.txt': completion,
  };
  for (const name of RECEIPT_FILES) writeFileAtomic(store.loki, `${dir}/${name}`, contents[name], { mode: 0o600 });
  const manifest: Manifest = {
    runId: run.runId,
    createdAt,
    headline: h.headline,
    baselineCommit: run.git.baselineCommit,
    finalCommit,
    finalTree: input.codeState,
    diff,
    files: Object.fromEntries(RECEIPT_FILES.map((n) => [n, sha256(contents[n])])),
  };
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  writeFileAtomic(store.loki, `${dir}/${MANIFEST}`, manifestText, { mode: 0o600 });
  return { dir, headline: h.headline, why: h.why, manifestSha256: sha256(manifestText), finalCommit };
}

/** Keep the final code reachable (a commit of the verified tree on top of the baseline). */
function keepFinalCode(root: string, run: RunState, tree: string | null): string | null {
  if (!tree || !run.git.repository) return null;
  const made = commitSnapshot(
    root,
    tree,
    `loki-mode final code of run ${run.runId}`,
    `refs/loki/runs/${run.runId}/final`,
    run.git.baselineCommit,
  );
  return 'commit' in made ? made.commit : null;
}

function renderReceipt(
  run: RunState,
  headline: Headline,
  why: string[],
  f: VerificationFacts,
  diff: DiffStats | null,
  input: ReceiptInput,
  finalCommit: string | null,
  waivers: ChecklistItem[],
  more: { specChecks: ChecklistItem[]; agentChecks: ChecklistItem[]; restarts: RunState[] },
): string {
  const { facts: work, verdict } = input.work;
  const checkLine = (i: ChecklistItem, whose: string) =>
    `- ${i.heldOut ? 'Held-out ' : ''}${i.id} (${i.check!.kind}${whose}): ${i.status === 'waived' ? 'waived' : i.result ? (i.result.ok ? 'passes' : 'FAILS') : 'not run'}: ${i.result?.detail ?? ''}`;
  const notDone = verdict.open.map(
    (t) => `${t.id} ${t.status}${t.waiver ? ` (waived at the loki CLI, ${t.waiver})` : ''}`,
  );
  return [
    `# ${headline}`,
    '',
    `Run ${run.runId}, spec ${run.spec?.path ?? 'inline text'}${run.spec?.title ? ` "${run.spec.title}"` : ''}.`,
    ...why.map((w) => `- ${w}`),
    '',
    'What each fact rests on and which cheats it closes: docs/trust.md of loki-mode (node_modules/loki-mode/docs/trust.md when installed from npm). What no check here can close: the agent runs as your user, so its processes could rewrite the runner report while the tests run, or the records, the audit chain and its anchor all together; keep the manifest hash that `loki proof verify` prints somewhere the agent cannot write (a tag or note you push, a ticket).',
    '',
    '## FACTS (measured by the server)',
    '',
    `- Work: ${work.tasks.length} task(s), ${work.tasks.length - verdict.open.length} completed${notDone.length ? `; not done: ${notDone.join(', ')}` : ''}.`,
    `- Phase: ${work.phase}${verdict.phaseReached ? `, the last phase of the ${work.tier} tier` : `, before ${verdict.lastPhase} (the last phase of the ${work.tier} tier)${verdict.phaseWaiver ? `: waived at the loki CLI (${verdict.phaseWaiver})` : ''}`}.`,
    `- Verification ${f.id} at ${f.at}.`,
    ...f.checks.map(
      (x) =>
        `- ${x.name}: \`${x.command}\` exited ${x.exitCode ?? '-'} in ${x.durationMs} ms (${x.ok ? 'pass' : 'FAIL'}). ${x.detail}`,
    ),
    `- Tests: ${f.tests.verdict}${f.tests.passed !== null ? `, ${f.tests.passed} passed, ${f.tests.failed} failed, ${f.tests.skipped} skipped` : ''}.`,
    `- Diff since the baseline ${run.git.baselineCommit?.slice(0, 12) ?? '(none)'}: ${diff ? `${diff.files} files, +${diff.insertions} -${diff.deletions}` : 'cannot be measured'}; final code ${finalCommit?.slice(0, 12) ?? '(not recorded)'}.`,
    ...more.restarts.map(
      (r) =>
        `- Restart: this run replaced run ${r.runId} (spec ${r.spec?.path ?? 'inline text'}${r.spec ? ` ${r.spec.sha256.slice(0, 12)}` : ''}, started ${r.startedAt}) and keeps its baseline ${r.git.baselineCommit?.slice(0, 12) ?? '(none)'}: whatever changed before the restart is measured too.`,
    ),
    ...more.specChecks.map((i) => checkLine(i, ', stated by the spec')),
    ...f.toJudge.map((t) => `- Tests removed or thinned, accepted by council ${input.council?.id ?? '(none)'}: ${t}`),
    ...(input.heldOutSet?.count
      ? [
          `- Held out until completion was claimed: ${input.heldOutSet.count} item(s), ${input.heldOutSet.seeded ? 'chosen from LOKI_HELD_OUT_SEED (predictable to whoever knew the seed)' : 'chosen at random and kept outside the project'}.`,
        ]
      : []),
    ...[...f.gaps].map((g) => `- Cannot know: ${g}`),
    '',
    '## ASSESSMENTS (judged by agents and the council)',
    '',
    ...input.checklist
      .filter((i) => !i.check && i.status !== 'waived')
      .map(
        (i) =>
          `- ${i.heldOut ? 'Held-out ' : ''}${i.id} "${i.text}": ${input.gate.items.find((g) => g.id === i.id)?.verdict.ok ? 'met' : 'not met'}${i.note ? ` (${i.note})` : ''}`,
      ),
    ...more.agentChecks.map((i) => checkLine(i, `, a check the agent attached to "${i.text}"`)),
    ...waivers.map(
      (i) =>
        `- WAIVED ${i.id} "${i.text}"${i.waiver ? ` (a person's waiver at the loki CLI, ${i.waiver})` : ''}: ${i.note}`,
    ),
    ...(input.councils.length === 0 ? [`- No council${input.councilEnabled ? '' : ' (disabled)'}.`] : []),
    ...input.councils.flatMap((c) => councilLines(c, c.id === input.council?.id)),
    ...personWaiverSection(work.waivers, verdict, input.checklist),
    '',
  ].join('\n');
}

/** One council: its outcome, who voted (once it tallied), and each vote. */
function councilLines(c: CouncilFacts, deciding: boolean): string[] {
  const o = c.outcome;
  const approvals = c.votes.filter((v) => v.vote === 'approve').length;
  // The votes below say why; a council closed before every seat voted (superseded) says so itself.
  const reasons =
    o.state === 'rejected' && c.votes.length < c.size && o.reasons.length ? `: ${o.reasons.join('; ')}` : '';
  return [
    `- Council ${c.id} (convened ${c.convenedAt}, on verification ${c.verificationId ?? '-'})${deciding ? ', the latest' : ''}: ${o.state}, ${approvals} of ${c.size} approved (threshold ${c.threshold})${c.devilsAdvocate ? `; devil's advocate ${c.devilsAdvocate.vote}` : ''}${reasons}.`,
    ...(c.votes.length ? [`  - ${votersNote(c)}`] : []),
    ...[...c.votes, ...(c.devilsAdvocate ? [c.devilsAdvocate] : [])].map(
      (v) => `  - seat ${v.seat} ${v.role}: ${v.vote}: ${v.rationale}`,
    ),
  ];
}

/**
 * Whether a person's waiver excused something at completion: open work or the phase (the work verdict), or a
 * checklist item still waived by it (the agent may have marked it since, which ends the person's waiver).
 */
function usedAtCompletion(w: WorkWaiver, verdict: WorkVerdict, checklist: readonly ChecklistItem[]): boolean {
  if (w.kind === 'item') return checklist.some((i) => i.status === 'waived' && i.waiver === w.id);
  return verdict.used.includes(w.id);
}

function personWaiverSection(
  waivers: readonly WorkWaiver[],
  verdict: WorkVerdict,
  checklist: readonly ChecklistItem[],
): string[] {
  if (waivers.length === 0) return [];
  return [
    '',
    // No MCP tool can waive; `loki waive` runs in a terminal, which the agent's shell is too: say exactly that.
    "## WAIVED AT THE loki CLI (`loki waive`: no MCP tool can waive, but the server cannot tell a person from the agent's shell)",
    '',
    ...waivers.map(
      (w) =>
        `- ${describeWaiver(w)}${usedAtCompletion(w, verdict, checklist) ? '' : w.kind === 'item' ? ' (not in force at completion: the item was marked since)' : ' (not needed at completion: that work was done)'}`,
    ),
  ];
}

/** The headline gap a person's waiver leaves. */
function personGap(w: WorkWaiver, verdict: WorkVerdict): string {
  if (w.kind === 'phase')
    return `A person waived reaching ${verdict.lastPhase} (${w.id}): the run completed in ${w.phase ?? 'an earlier phase'}; reason below.`;
  const open = verdict.open.filter((t) => t.waiver === w.id).map((t) => t.id);
  return `A person waived work that was not done (${w.id}): ${open.join(', ')}; reason below.`;
}

function councilDoc(c: CouncilFacts) {
  return {
    id: c.id,
    convenedAt: c.convenedAt,
    verificationId: c.verificationId,
    threshold: c.threshold,
    outcome: c.outcome,
    votes: c.votes,
    devilsAdvocate: c.devilsAdvocate,
    voters: votersNote(c),
  };
}

/** Earlier runs a restart replaced whose baseline this run kept (see run/start.ts), oldest first. */
function restartsOf(store: Store, run: RunState): RunState[] {
  const base = run.git.baselineCommit;
  if (!base) return [];
  return store.records
    .list(archivedRunKey(''), RUN_RECORD)
    .filter((r) => r.runId !== run.runId && r.git.baselineCommit === base)
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
}

/**
 * How many MCP client sessions cast the votes. Sessions are what the server can count; it cannot tell whether
 * they are independent reviewers (one agent can open several), so the receipt never calls them that.
 */
function votersNote(c: CouncilFacts): string {
  const sessions = new Set([...c.votes, ...(c.devilsAdvocate ? [c.devilsAdvocate] : [])].map((v) => v.agent));
  return sessions.size <= 1
    ? 'Every vote came from one MCP client session (sequential self-review, as on hosts without subagents).'
    : `The votes came from ${sessions.size} MCP client sessions; the server cannot tell whether these were independent reviewers (one agent can open several sessions).`;
}

export interface ProofCheck {
  runId: string;
  ok: boolean;
  headline: Headline | null;
  /** sha256 of the manifest as it is now: the value to keep outside the machine's reach (docs/trust.md). */
  manifestSha256?: string;
  problems: string[];
  notes: string[];
}

export function listProofs(store: Store | undefined): string[] {
  return store ? listNames(store.loki, PROOFS_DIR).sort() : [];
}

export function readProofFile(store: Store, runId: string, name: string): string | undefined {
  return readFileIfExists(store.loki, `${PROOFS_DIR}/${runId}/${name}`)?.toString('utf8');
}

/** Re-hash the receipt, check its manifest against the audit log, re-derive the diff, and look for drift. */
export function verifyProof(store: Store, root: string, runId: string, currentTree: () => string | null): ProofCheck {
  const problems: string[] = [];
  const notes: string[] = [];
  const manifestText = readProofFile(store, runId, MANIFEST);
  if (manifestText === undefined)
    return {
      runId,
      ok: false,
      headline: null,
      problems: [`no receipt for run ${runId} (.loki/${PROOFS_DIR}/${runId}/${MANIFEST} is missing)`],
      notes,
    };
  let manifest: Manifest;
  try {
    manifest = JSON.parse(manifestText) as Manifest;
  } catch {
    return {
      runId,
      ok: false,
      headline: null,
      problems: [`${MANIFEST} is not valid JSON: the receipt was edited`],
      notes,
    };
  }
  for (const name of RECEIPT_FILES) {
    const text = readProofFile(store, runId, name);
    if (text === undefined) problems.push(`${name} is missing`);
    else if (sha256(text) !== manifest.files?.[name])
      problems.push(`${name} was changed after completion (its sha256 no longer matches the manifest)`);
  }
  const chain = store.audit.verify();
  if (!chain.ok)
    problems.push(
      `the audit log is broken at entry ${chain.firstBreak?.index ?? '?'} (${chain.firstBreak?.reason ?? 'unknown'}), so the manifest recorded in it cannot be trusted (see loki audit verify)`,
    );
  for (const t of bindingProblems(store)) problems.push(`tamper evidence: ${t}`);
  const started = startEntryBaseline(store, runId);
  if (manifest.baselineCommit && started !== undefined && started !== manifest.baselineCommit)
    problems.push(
      `the receipt's baseline ${manifest.baselineCommit.slice(0, 12)} is not the one recorded in the audit log when the run started (${started?.slice(0, 12) ?? 'none'})`,
    );
  const anchored = completionEntryManifest(store, runId);
  if (anchored === undefined)
    problems.push('the audit log has no run.complete entry for this run, so the manifest cannot be checked against it');
  else if (anchored !== sha256(manifestText))
    problems.push(`${MANIFEST} differs from the one recorded in the audit log at completion`);
  if (manifest.finalTree && manifest.baselineCommit) {
    const again = diffStats(root, manifest.baselineCommit, manifest.finalTree);
    if (!again)
      problems.push('the diff cannot be re-derived: the baseline or the final code is gone from the git repository');
    else if (JSON.stringify(again) !== JSON.stringify(manifest.diff))
      problems.push(
        `the re-derived diff (${again.files} files, +${again.insertions} -${again.deletions}) differs from the receipt's`,
      );
  } else notes.push('no git baseline was recorded: the diff cannot be re-derived (the receipt says so)');
  if (manifest.finalTree) {
    const now = currentTree();
    if (now !== manifest.finalTree) {
      const drift = now ? diffStats(root, manifest.finalCommit, now) : null;
      problems.push(
        `the code changed since completion (drift${drift ? `: ${drift.files} file(s), +${drift.insertions} -${drift.deletions}` : ''}); the receipt no longer describes the working tree`,
      );
    }
  } else notes.push('the final code was not recorded (no git repository): drift cannot be checked');
  return {
    runId,
    ok: problems.length === 0,
    headline: manifest.headline ?? null,
    manifestSha256: sha256(manifestText),
    problems,
    notes,
  };
}

/** The manifest hash recorded by the run.complete audit entry of this run (the last one wins). */
function completionEntryManifest(store: Store, runId: string): string | undefined {
  const row = store.db.get<{ manifest: string | null }>(
    "SELECT data ->> '$.manifest' AS manifest FROM audit WHERE action = 'run.complete' AND target = ? ORDER BY seq DESC LIMIT 1",
    runId,
  );
  return row?.manifest ?? undefined;
}

/** The baseline commit the audit log recorded when the run started (undefined: no start entry for it). */
function startEntryBaseline(store: Store, runId: string): string | null | undefined {
  const row = store.db.get<{ baseline: string | null }>(
    "SELECT data ->> '$.baseline' AS baseline FROM audit WHERE action = 'run.start' AND target = ? ORDER BY seq LIMIT 1",
    runId,
  );
  return row === undefined ? undefined : row.baseline;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
