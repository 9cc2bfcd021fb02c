/**
 * The completion council on disk: convening hands out one brief per seat (the facts, the whole checklist with
 * the held-out items, what to cite); votes are blind (a vote's answer says only how many are in, until the
 * tally); a unanimous approval calls the devil's advocate (seat 0), whose rejection vetoes. Convening counts as
 * claiming completion, so it reveals the held-out items. Each change to a session is one transaction.
 */
import { visibleItems, type ChecklistItem } from '../domain/checklist.js';
import {
  DECIDED_OUTCOMES,
  DEVILS_ADVOCATE,
  VOTING_STATES,
  ROLES,
  conveneRefusal,
  effectiveThreshold,
  tally,
  type CastVote,
  type CouncilOutcome,
  type Vote,
} from '../domain/council.js';
import type { CouncilFacts, VerificationFacts } from '../domain/evidence.js';
import type { Project } from '../project.js';
import type { SessionIdentity } from '../run/sessions.js';
import { personAt } from '../run/person.js';
import { activeRun, readRun } from '../run/state.js';
import type { Store } from '../store/store.js';
import { evaluateChecklist, readChecklist, revealHeldOut } from './checklist.js';
import { latestFacts } from './facts.js';
import { COUNCIL_RECORD, councilDir, councilFile, type CouncilSession } from './records.js';
import { checklistFingerprint, codeState, readTrust, updateTrust } from './state.js';
import { UsageError } from '../errors.js';
import { judgeWork } from '../domain/waivers.js';
import { workFacts } from './waivers.js';

const SESSION_NAME = /^k(\d{3,})$/;

export interface MemberBrief {
  seat: number;
  role: string;
  focus: string;
  /** What to send to a subagent (or to read yourself, one seat at a time, on hosts without subagents). */
  prompt: string;
}

export interface ConveneResult {
  council: string;
  size: number;
  threshold: number;
  verification: string;
  /** True when an open council for this very code was picked up again rather than a new one convened. */
  resumed: boolean;
  /**
   * The brief of the seat whose turn it is: one at a time, so each member reads only its own (the next comes back
   * with each vote). A host with subagents hands each brief to a fresh one.
   */
  brief: MemberBrief;
  /** Fact keys a vote may cite in `evidence`. */
  citable: string[];
  heldOutToJudge: string[];
}

export function latestCouncil(store: Store | undefined, runId: string): CouncilSession | undefined {
  if (!store) return undefined;
  const last = sessionNames(store, runId).at(-1);
  return last ? store.records.read(councilFile(runId, last.replace(/\.json$/, '')), COUNCIL_RECORD) : undefined;
}

export function listCouncils(store: Store | undefined, runId: string): CouncilSession[] {
  if (!store) return [];
  return sessionNames(store, runId)
    .map((n) => store.records.read(councilFile(runId, n), COUNCIL_RECORD))
    .filter((s): s is CouncilSession => s !== undefined);
}

/** Session file names in numeric order (k999 before k1000). */
function sessionNames(store: Store, runId: string): string[] {
  const n = (name: string) => Number(SESSION_NAME.exec(name)![1]);
  const prefix = councilDir(runId);
  return store.records
    .keys(prefix, COUNCIL_RECORD)
    .map((key) => key.slice(prefix.length))
    .filter((name) => SESSION_NAME.test(name))
    .sort((a, b) => n(a) - n(b));
}

export function councilFacts(s: CouncilSession): CouncilFacts {
  return {
    id: s.id,
    outcome: outcomeOf(s),
    codeState: s.codeState,
    size: s.size,
    threshold: s.threshold,
    votes: s.votes,
    devilsAdvocate: s.devilsAdvocate,
    convenedAt: s.convenedAt,
    verificationId: s.verificationId,
    checklist: s.checklist,
  };
}

export function outcomeOf(s: CouncilSession): CouncilOutcome {
  // A session closed before every seat voted was superseded by a newer one.
  if (s.closedAt && s.votes.length < s.size)
    return { state: 'rejected', approvals: 0, reasons: s.reasons, vetoed: false };
  return tally(s.votes, s.size, s.threshold, s.devilsAdvocate);
}

export async function convene(
  project: Project,
  who: SessionIdentity,
  reason: string | undefined,
): Promise<ConveneResult> {
  const config = project.config();
  const run = activeRun(project, 'convening the council');
  if (!config.council.enabled)
    throw new UsageError(
      'the council is disabled (council.enabled / LOKI_COUNCIL_ENABLED=false): loki_complete decides on the facts alone',
    );
  const store = project.openStore();
  const facts = latestFacts(project, run.runId);
  const now = codeState(run, project.root);
  const trust = readTrust(store, run.runId);
  const refusal = conveneRefusal({
    verifiedCurrentCode: facts !== null && facts.codeState === now,
    progress: facts !== null && progressSinceBaseline(project, facts),
    forcedReview: trust.forcedReview !== null,
  });
  if (refusal) throw new UsageError(refusal);
  if (facts!.blocking.length > 0) {
    throw new UsageError(
      `the latest verification (${facts!.id}) has ${facts!.blocking.length} blocking finding(s); fix them and call loki_verify before convening: ${facts!.blocking[0]}`,
    );
  }
  const last = latestCouncil(store, run.runId);
  if (
    last &&
    last.closedAt === null &&
    last.codeState === now &&
    last.verificationId === facts!.id &&
    last.checklist === checklistFingerprint(readChecklist(store, run.runId))
  ) {
    return resumeCouncil(project, last, facts!);
  }
  if (
    last &&
    last.closedAt &&
    last.votes.length === last.size &&
    outcomeOf(last).state === 'rejected' &&
    last.codeState === now
  ) {
    throw new UsageError(
      `council ${last.id} rejected this very code; change it to address ${outcomeOf(last).state === 'rejected' ? 'what the members found' : 'the findings'}, call loki_verify, then convene again`,
    );
  }
  // Convening claims completion: the held-out items are revealed, and judged from here on.
  await updateTrust(project, run.runId, (t) => ({
    next: { ...t, claimedAt: t.claimedAt ?? new Date().toISOString() },
    result: undefined,
  }));
  await revealHeldOut(project, run.runId);
  const checklist = (await evaluateChecklist(project, run.runId, facts)) ?? undefined;
  const items = checklist ? visibleItems(checklist) : [];
  const size = config.council.size;
  const threshold = effectiveThreshold(size, config.council.threshold);
  const seats = ROLES.slice(0, size).map((r, i) => ({ seat: i + 1, role: r.role }));
  const citable = citableKeys(facts!, items);
  const heldOutToJudge = heldOutToJudgeOf(items);

  const session = await store.mutate(
    (): CouncilSession => {
      const previous = latestCouncil(store, run.runId);
      const n = previous ? Number(SESSION_NAME.exec(previous.id)![1]) + 1 : 1;
      if (previous && previous.closedAt === null) {
        store.records.write(councilFile(run.runId, previous.id), COUNCIL_RECORD, {
          ...previous,
          outcome: 'rejected',
          closedAt: new Date().toISOString(),
          reasons: [`superseded by a new council (k${String(n).padStart(3, '0')})`],
        });
      }
      const s: CouncilSession = {
        id: `k${String(n).padStart(3, '0')}`,
        runId: run.runId,
        convenedAt: new Date().toISOString(),
        convenedBy: who.id,
        reason:
          reason?.trim() || (trust.forcedReview ? `forced review: ${trust.forcedReview.reason}` : 'completion claimed'),
        size,
        threshold,
        codeState: now,
        verificationId: facts!.id,
        checklist: checklistFingerprint(checklist),
        seats,
        votes: [],
        devilsAdvocate: null,
        outcome: 'voting',
        closedAt: null,
        reasons: [],
      };
      store.records.write(councilFile(run.runId, s.id), COUNCIL_RECORD, s);
      return s;
    },
    (s) => ({
      action: 'council.convene',
      target: run.runId,
      data: { council: s.id, size, threshold, verification: s.verificationId, codeState: s.codeState },
    }),
  );
  return {
    council: session.id,
    size,
    threshold,
    verification: facts!.id,
    resumed: false,
    brief: seatBrief(session, 1, facts!, items, citable, heldOutToJudge),
    citable,
    heldOutToJudge,
  };
}

/** An open council for the code as it is: the brief of the seat whose turn it is, nothing new recorded. */
function resumeCouncil(project: Project, s: CouncilSession, facts: VerificationFacts): ConveneResult {
  const list = readChecklist(project.existingStore(), s.runId);
  const items = list ? visibleItems(list) : [];
  const citable = citableKeys(facts, items);
  const heldOut = heldOutToJudgeOf(items);
  const seat = s.outcome === 'devils-advocate' ? 0 : (nextSeatOf(s) ?? 1);
  return {
    council: s.id,
    size: s.size,
    threshold: s.threshold,
    verification: facts.id,
    resumed: true,
    brief: seat === 0 ? devilBrief(s, facts, items) : seatBrief(s, seat, facts, items, citable, heldOut),
    citable,
    heldOutToJudge: heldOut,
  };
}

/** The first seat (1..size) without a vote; null when every seat has voted. */
export function nextSeatOf(s: CouncilSession): number | null {
  return s.seats.find((x) => !s.votes.some((v) => v.seat === x.seat))?.seat ?? null;
}

function heldOutToJudgeOf(items: readonly ChecklistItem[]): string[] {
  return items.filter((i) => i.heldOut && !i.check && i.status !== 'waived').map((i) => i.id);
}

function seatBrief(
  s: CouncilSession,
  seat: number,
  facts: VerificationFacts,
  items: readonly ChecklistItem[],
  citable: string[],
  heldOut: string[],
): MemberBrief {
  const role = s.seats.find((x) => x.seat === seat)!.role;
  return brief(s, seat, role, ROLES.find((r) => r.role === role)!.focus, facts, items, citable, heldOut);
}

/**
 * Real progress to judge: the verified code differs from the run's baseline, or a task was completed. (This
 * replaces counting loki_status turns, which a model can inflate or never reach.)
 */
function progressSinceBaseline(project: Project, facts: VerificationFacts): boolean {
  if (facts.diff === null || facts.diff.files > 0) return true;
  return project.tasks().summary(undefined).counts.completed > 0;
}

export interface VoteArgs {
  council: string;
  seat: number;
  vote: Vote;
  rationale: string;
  evidence: string[];
  items?: { id: string; met: boolean; note: string }[] | undefined;
}

export interface VoteResult {
  council: string;
  seat: number;
  recorded: true;
  /** Until every seat has voted only the count shows: votes are blind. */
  cast: number;
  size: number;
  outcome: CouncilOutcome['state'];
  /** After the tally: the result and its reasons. */
  tally: CouncilOutcome | null;
  /** When the approval was unanimous: the devil's advocate's brief (vote as seat 0). */
  devilsAdvocate: MemberBrief | null;
  /** While voting: the brief of the next seat to vote (one at a time; the others stay blind to this vote). */
  nextBrief: MemberBrief | null;
  /** Held-out items an approving member must judge (ids). */
  heldOutToJudge: string[];
  /**
   * Approved, but completion would still refuse on the work (open tasks, a phase not reached: domain/waivers.ts):
   * its reasons, so the answer does not lead into that refusal. Absent when there are none.
   */
  workReasons?: string[];
}

export async function castVote(project: Project, who: SessionIdentity, args: VoteArgs): Promise<VoteResult> {
  project.config();
  const run = activeRun(project, 'voting');
  const store = project.openStore();
  const facts = latestFacts(project, run.runId);
  if (!facts) throw new UsageError('no verification to judge: call loki_verify, then loki_council_convene');
  // After the refusals that need no code state: hashing the working tree writes its new files into git's objects.
  const now = codeState(run, project.root);
  const r = store.mutate(
    (): VoteResult => {
      const s = latestCouncil(store, run.runId);
      if (!s || s.id !== args.council) {
        throw new UsageError(
          `council ${args.council} is not the current one${s ? ` (${s.id} is)` : ''}: vote in the latest council, or convene one with loki_council_convene`,
        );
      }
      if (s.closedAt) throw new UsageError(`council ${s.id} is closed (${s.outcome}); convene a new one to vote again`);
      if (now !== s.codeState)
        throw new UsageError(
          `the code changed after council ${s.id} convened, so this vote would judge stale facts: call loki_verify, then loki_council_convene again`,
        );
      const isDevil = args.seat === 0;
      if (isDevil && s.outcome !== 'devils-advocate')
        throw new UsageError(
          `seat 0 (the devil's advocate) votes only after a unanimous approval; council ${s.id} is ${s.outcome}`,
        );
      if (!isDevil && s.outcome === 'devils-advocate')
        throw new UsageError(
          `every seat of council ${s.id} approved; now the devil's advocate must review: vote as seat 0`,
        );
      if (!isDevil && s.outcome !== 'voting') throw new UsageError(`every seat of council ${s.id} has voted`);
      if (!isDevil && !s.seats.some((x) => x.seat === args.seat))
        throw new UsageError(
          `council ${s.id} has seats 1-${s.size} (and 0 for the devil's advocate); seat ${args.seat} does not exist`,
        );
      if (!isDevil && s.votes.some((v) => v.seat === args.seat))
        throw new UsageError(`seat ${args.seat} of council ${s.id} has already voted; votes are final`);
      const items = args.items ?? [];
      const list = readChecklist(store, run.runId);
      const visible = list ? visibleItems(list) : [];
      const citable = citableKeys(facts!, visible);
      checkEvidence(args.evidence, new Set(citable), citable);
      for (const i of items)
        if (!visible.some((v) => v.id === i.id))
          throw new UsageError(`items: no checklist item "${i.id}"; the brief lists the held-out items to judge`);
      const toJudge = heldOutToJudgeOf(visible);
      const missing = toJudge.filter((id) => !items.some((i) => i.id === id));
      if (!isDevil && args.vote === 'approve' && missing.length > 0) {
        throw new UsageError(
          `an approval must judge every held-out item without a machine check: add {id, met, note} to \`items\` for ${missing.join(', ')}`,
        );
      }
      const role = isDevil ? DEVILS_ADVOCATE.role : s.seats.find((x) => x.seat === args.seat)!.role;
      const vote: CastVote = {
        seat: args.seat,
        role,
        vote: args.vote,
        rationale: args.rationale.trim(),
        evidence: args.evidence,
        items,
        codeState: now,
        at: new Date().toISOString(),
        agent: who.id,
      };
      const next: CouncilSession = isDevil ? { ...s, devilsAdvocate: vote } : { ...s, votes: [...s.votes, vote] };
      const o = tally(next.votes, next.size, next.threshold, next.devilsAdvocate);
      next.outcome = o.state;
      if (DECIDED_OUTCOMES.includes(o.state)) {
        next.closedAt = vote.at;
        next.reasons = o.state === 'rejected' ? o.reasons : [];
      }
      store.records.write(councilFile(run.runId, s.id), COUNCIL_RECORD, next);
      const closed = o.state !== 'voting';
      return {
        council: s.id,
        seat: args.seat,
        recorded: true,
        cast: next.votes.length,
        size: next.size,
        outcome: o.state,
        tally: closed ? o : null,
        devilsAdvocate: o.state === 'devils-advocate' ? devilBrief(next, facts!, visible) : null,
        nextBrief:
          o.state === 'voting' && nextSeatOf(next) !== null
            ? seatBrief(next, nextSeatOf(next)!, facts!, visible, citable, toJudge)
            : null,
        heldOutToJudge: toJudge,
      };
    },
    (r) => ({
      action: 'council.vote',
      target: run.runId,
      data: { council: r.council, seat: r.seat, outcome: r.outcome, ...(r.tally ? { tally: r.tally } : {}) },
    }),
  );
  if (r.outcome === 'approved') {
    const work = judgeWork(workFacts(project, run)).reasons;
    if (work.length > 0) r.workReasons = work;
  }
  if (DECIDED_OUTCOMES.includes(r.outcome) && readTrust(store, run.runId).forcedReview) {
    await updateTrust(project, run.runId, (t) => ({
      next: { ...t, forcedReview: null },
      result: undefined,
      audit: { action: 'council.review-done', data: { council: r.council } },
    }));
  }
  return r;
}

/** Evidence entries start with a fact key (then optional words): "v0003:tests 12 passed", "item:c-1a2b3c4d". */
function checkEvidence(evidence: readonly string[], known: ReadonlySet<string>, keys: string[]): void {
  if (evidence.length === 0)
    throw new UsageError(`a vote must cite at least one fact in \`evidence\`, e.g. "${keys[0] ?? 'v0001:tests'}"`);
  for (const e of evidence) {
    const key = e.trim().split(/\s+/)[0] ?? '';
    if (!known.has(key))
      throw new UsageError(
        `evidence "${e.slice(0, 80)}" does not start with a fact key; cite one of: ${keys.slice(0, 12).join(', ')}, or item:<checklist id>`,
      );
  }
}

function citableKeys(f: VerificationFacts, items: readonly ChecklistItem[]): string[] {
  return [
    f.id,
    `${f.id}:tests`,
    `${f.id}:diff`,
    `${f.id}:secrets`,
    ...f.checks.map((c) => `${f.id}:${c.name}`),
    ...items.map((i) => `item:${i.id}`),
  ];
}

function factsBlock(f: VerificationFacts): string {
  return [
    `Verification ${f.id} (${f.at}), run by the server:`,
    ...f.checks.map(
      (c) => `- ${c.name}: \`${c.command}\` exit ${c.exitCode ?? '-'} (${c.ok ? 'pass' : 'FAIL'}), ${c.detail}`,
    ),
    `- tests: ${f.tests.verdict}${f.tests.passed !== null ? ` (${f.tests.passed} passed, ${f.tests.failed} failed, ${f.tests.skipped} skipped)` : ''}`,
    `- diff since baseline: ${f.diff ? `${f.diff.files} files, +${f.diff.insertions} -${f.diff.deletions}` : 'unknown (no git)'}`,
    ...f.blocking.map((b) => `- BLOCKING: ${b}`),
    ...f.toJudge.map((t) => `- TO JUDGE: ${t}`),
    ...f.gaps.map((g) => `- cannot know: ${g}`),
  ].join('\n');
}

function brief(
  s: CouncilSession,
  seat: number,
  role: string,
  focus: string,
  f: VerificationFacts,
  items: readonly ChecklistItem[],
  citable: string[],
  heldOut: string[],
): MemberBrief {
  // What a member must judge comes first and in full: the vote it owes, then the items no machine check proves.
  // Items a passing check proves are one line of ids, so a long checklist still fits what hosts show.
  const proven = items.filter((i) => i.status !== 'waived' && i.check && i.result?.ok);
  const rest = items.filter((i) => !proven.includes(i));
  const list = rest.map(
    (i) =>
      `- ${i.id}${i.heldOut ? ' [held-out]' : ''}: ${i.text} -- ${i.status}${i.check ? `, ${i.check.kind} check ${i.result ? (i.result.ok ? 'passes' : `FAILS: ${i.result.detail}`) : 'not run'}` : ''}${i.note ? ` (${i.note})` : ''}`,
  );
  const prompt = [
    `You are seat ${seat} (${role}) of completion council ${s.id} for a Loki Mode run. Judge independently; you cannot see the other votes.`,
    `Focus: ${focus}`,
    `To vote: loki_council_vote with council "${s.id}", seat ${seat}, vote approve|reject|cannot-validate, a rationale, evidence citing fact keys (${citable.slice(0, 6).join(', ')}, ...)` +
      (heldOut.length
        ? `, and items: a verdict {id, met, note} for each held-out item without a machine check (${heldOut.join(', ')}).`
        : '.'),
    factsBlock(f),
    `Checklist (${items.length} items; held-out items were never shown to the builder):`,
    ...list,
    ...(proven.length
      ? [`- ${proven.length} item(s) pass their machine checks: ${proven.map((i) => i.id).join(', ')}`]
      : []),
    'Inspect the code and the facts yourself (loki_checklist_get has every item in full). Approve only what the facts show; an unverifiable claim is cannot-validate, which counts against.',
  ].join('\n');
  return { seat, role, focus, prompt };
}

/** Seat 0's brief, given after a unanimous approval (by the last vote, or by convening again to resume). */
function devilBrief(s: CouncilSession, f: VerificationFacts, items: readonly ChecklistItem[]): MemberBrief {
  return { seat: 0, role: DEVILS_ADVOCATE.role, focus: DEVILS_ADVOCATE.focus, prompt: devilPrompt(s, f, items) };
}

/**
 * The devil's advocate is told exactly what to attack: every claim the approval rests on that no machine check
 * proves (items marked met by the builder, held-out items judged by the members, findings put to the council),
 * and what the server cannot know. It rejects only with a concrete reason.
 */
function devilPrompt(s: CouncilSession, f: VerificationFacts, items: readonly ChecklistItem[]): string {
  const unproven = items.filter((i) => i.status !== 'waived' && !i.check);
  const claims = [
    ...unproven.map(
      (i) =>
        `- item:${i.id}${i.heldOut ? ' [held-out, judged by the members]' : ' [marked met by the builder]'}: ${i.text}${i.note ? ` (${i.note})` : ''}`,
    ),
    ...f.toJudge.map((t) => `- TO JUDGE: ${t}`),
    ...f.gaps.map((g) => `- the server cannot know: ${g}`),
  ];
  return [
    `Every member of council ${s.id} approved. You are the devil's advocate (seat 0), blind to their reasons: find the one concrete reason this work is not done, if there is one.`,
    DEVILS_ADVOCATE.focus,
    // Real keys only: a model may copy the example as written.
    `To vote: loki_council_vote with council "${s.id}", seat 0, your vote, a rationale and evidence citing fact keys (${[`${f.id}:tests`, ...unproven.slice(0, 2).map((i) => `item:${i.id}`)].join(', ')}).`,
    claims.length
      ? `Judge these claims, which no machine check proves (${claims.length}):\n${claims.join('\n')}`
      : 'Every checklist item is proved by a machine check; judge whether the tests really exercise the spec.',
    'Read the code for each. Reject only with a concrete reason (a file, what fails, which item); otherwise approve.',
    factsBlock(f),
  ].join('\n');
}

/**
 * A council as people may see it: the votes only after the tally (votes are blind while the council votes), with
 * the devil's advocate's among them.
 */
export function publicVerdicts(s: CouncilSession) {
  const state = outcomeOf(s).state;
  const hidden = VOTING_STATES.includes(state);
  const votes = hidden ? [] : [...s.votes, ...(s.devilsAdvocate ? [s.devilsAdvocate] : [])];
  return {
    id: s.id,
    state,
    hidden,
    cast: s.votes.length,
    size: s.size,
    threshold: s.threshold,
    convenedAt: s.convenedAt,
    reason: s.reason,
    votes: votes.map(({ seat, role, vote, rationale, evidence, at }) => ({
      seat,
      role,
      vote,
      rationale,
      evidence,
      at,
    })),
  };
}

export type PublicCouncil = ReturnType<typeof publicVerdicts>;

/** A person asks for a review (`loki council force-review`, the dashboard): the agent verifies and convenes next. */
export async function requestReview(project: Project, reason: string): Promise<{ runId: string; reason: string }> {
  const who = personAt(project, 'force a review');
  const run = readRun(project.existingStore());
  if (!run) throw new UsageError('no run yet in this project: a review needs a run');
  await updateTrust(project, run.runId, (t) => ({
    next: { ...t, forcedReview: { reason, at: new Date().toISOString(), by: 'user' } },
    result: undefined,
    audit: { action: 'council.force-review', data: { reason, by: 'user' }, actor: who.actor },
  }));
  return { runId: run.runId, reason };
}
