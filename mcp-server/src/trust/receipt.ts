/**
 * The evidence receipt under `.loki/proofs/<run>/`: FACTS.json (what the server measured), ASSESSMENTS.json (what
 * agents and the council judged), RECEIPT.md and COMPLETION.txt for people, and MANIFEST.json with the sha256 of
 * each. The manifest's own hash goes into the audit log's `run.complete` entry, and the final code is kept as a
 * commit under refs/loki/runs/<run>/final, so `loki proof verify` can re-hash the receipt, re-derive the diff
 * from the recorded baseline, and notice code that changed since.
 */
import crypto from 'node:crypto';
import type { ChecklistItem } from '../domain/checklist.js';
import {
  headline as headlineOf,
  type CouncilFacts,
  type GateResult,
  type Headline,
  type VerificationFacts,
} from '../domain/evidence.js';
import { commitSnapshot, git } from '../run/git.js';
import type { RunState } from '../run/records.js';
import { listNames, readFileIfExists, writeFileAtomic } from '../store/fsx.js';
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
  council: CouncilFacts | null;
  councilEnabled: boolean;
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
  const checkResults = input.checklist
    .filter((i) => i.check && i.status !== 'waived')
    .map((i) => ({ ok: i.result?.ok ?? false }));
  const waivers = input.checklist.filter((i) => i.status === 'waived');
  const gaps = [
    ...(run.git.repository
      ? []
      : [
          'This project is not a git repository: the server could not measure the code change or deleted and skipped tests, nor tell whether the code changed after the verification and the votes.',
        ]),
    ...(input.councilEnabled ? [] : ['The council was disabled (council.enabled=false): no independent review.']),
  ];
  const h = headlineOf({ ...facts, gaps: [...facts.gaps, ...gaps] }, checkResults, waivers.length);

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
    diff,
    verification: facts,
    machineChecks: input.checklist
      .filter((i) => i.check)
      .map((i) => ({
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
    note: 'Judgements by agents and the council. They decide acceptance together with the facts, but never the headline.',
    checklist: input.checklist
      .filter((i) => !i.check || i.status === 'waived')
      .map((i) => ({
        id: i.id,
        text: i.text,
        heldOut: i.heldOut,
        status: i.status,
        note: i.note,
        verdict: gate.items.find((g) => g.id === i.id)?.verdict ?? null,
      })),
    waivers: waivers.map((i) => ({ id: i.id, text: i.text, reason: i.note })),
    council: input.council && {
      id: input.council.id,
      convenedAt: input.council.convenedAt,
      threshold: input.council.threshold,
      outcome: input.council.outcome,
      votes: input.council.votes,
      devilsAdvocate: input.council.devilsAdvocate,
      voters: votersNote(input.council),
    },
  };
  const receiptMd = renderReceipt(run, h.headline, h.why, facts, diff, input, finalCommit, waivers);
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
): string {
  const c = input.council;
  return [
    `# ${headline}`,
    '',
    `Run ${run.runId}, spec ${run.spec?.path ?? 'inline text'}${run.spec?.title ? ` "${run.spec.title}"` : ''}.`,
    ...why.map((w) => `- ${w}`),
    '',
    '## FACTS (measured by the server)',
    '',
    `- Verification ${f.id} at ${f.at}.`,
    ...f.checks.map(
      (x) =>
        `- ${x.name}: \`${x.command}\` exited ${x.exitCode ?? '-'} in ${x.durationMs} ms (${x.ok ? 'pass' : 'FAIL'}). ${x.detail}`,
    ),
    `- Tests: ${f.tests.verdict}${f.tests.passed !== null ? `, ${f.tests.passed} passed, ${f.tests.failed} failed, ${f.tests.skipped} skipped` : ''}.`,
    `- Diff since the baseline ${run.git.baselineCommit?.slice(0, 12) ?? '(none)'}: ${diff ? `${diff.files} files, +${diff.insertions} -${diff.deletions}` : 'cannot be measured'}; final code ${finalCommit?.slice(0, 12) ?? '(not recorded)'}.`,
    ...input.checklist
      .filter((i) => i.check)
      .map(
        (i) =>
          `- ${i.heldOut ? 'Held-out ' : ''}${i.id} (${i.check!.kind}): ${i.status === 'waived' ? 'waived' : i.result ? (i.result.ok ? 'passes' : 'FAILS') : 'not run'}: ${i.result?.detail ?? ''}`,
      ),
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
    ...waivers.map((i) => `- WAIVED ${i.id} "${i.text}": ${i.note}`),
    c
      ? `- Council ${c.id}: ${c.outcome.state}, ${c.votes.filter((v) => v.vote === 'approve').length} of ${c.size} approved (threshold ${c.threshold})${c.devilsAdvocate ? `; devil's advocate ${c.devilsAdvocate.vote}` : ''}.`
      : `- No council${input.councilEnabled ? '' : ' (disabled)'}.`,
    ...(c ? [`- ${votersNote(c)}`] : []),
    ...(c ? c.votes.map((v) => `  - seat ${v.seat} ${v.role}: ${v.vote}: ${v.rationale}`) : []),
    '',
  ].join('\n');
}

/** Whether the votes came from separate sessions (subagents, several clients) or one agent in turns. */
function votersNote(c: CouncilFacts): string {
  const sessions = new Set([...c.votes, ...(c.devilsAdvocate ? [c.devilsAdvocate] : [])].map((v) => v.agent));
  return sessions.size <= 1
    ? 'Every vote came from one agent session (sequential self-review, as on hosts without subagents).'
    : `Votes came from ${sessions.size} separate sessions.`;
}

export interface ProofCheck {
  runId: string;
  ok: boolean;
  headline: Headline | null;
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
  return { runId, ok: problems.length === 0, headline: manifest.headline ?? null, problems, notes };
}

/** The manifest hash recorded by the run.complete audit entry of this run (the last one wins). */
function completionEntryManifest(store: Store, runId: string): string | undefined {
  const row = store.db.get<{ manifest: string | null }>(
    "SELECT data ->> '$.manifest' AS manifest FROM audit WHERE action = 'run.complete' AND target = ? ORDER BY seq DESC LIMIT 1",
    runId,
  );
  return row?.manifest ?? undefined;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
