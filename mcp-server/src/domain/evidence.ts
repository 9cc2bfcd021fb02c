/**
 * The completion gate and the evidence receipt, pure. The gate takes what the server knows (the work: tasks, phase
 * and a person's waivers; the latest verification, the code now, the checklist, the council) and returns every
 * reason completion must be refused. The receipt separates FACTS (what the server measured) from ASSESSMENTS (what
 * agents and the council judged); its headline is derived from the facts alone.
 */
import { itemVerdict, type Checklist, type Verdict } from './checklist.js';
import { DECIDED_OUTCOMES, heldOutMet, type CastVote, type CouncilOutcome } from './council.js';
import { judgeWork, type WorkFacts, type WorkVerdict } from './waivers.js';

/** What a verification established, as the gate and the receipt need it (adapted from the verify records). */
export interface VerificationFacts {
  id: string;
  at: string;
  /** Fingerprint of the code that was verified (null: not a git repository). */
  codeState: string | null;
  /** Each check command that ran: test, build, lint. */
  checks: { name: string; command: string; exitCode: number | null; ok: boolean; durationMs: number; detail: string }[];
  tests: {
    verdict: 'pass' | 'fail' | 'inconclusive' | 'unknown';
    passed: number | null;
    failed: number | null;
    skipped: number | null;
    detail: string;
  };
  diff: { files: number; insertions: number; deletions: number } | null;
  /** Reasons the verification itself says completion must be refused (red tests, zero tests, empty diff, ...). */
  blocking: string[];
  /** What the server could not know, in plain words. */
  gaps: string[];
  /** Tests of the baseline removed or thinned, with the agent's stated reason: accepted only by the council. */
  toJudge: string[];
}

export interface CouncilFacts {
  id: string;
  outcome: CouncilOutcome;
  codeState: string | null;
  size: number;
  threshold: number;
  votes: CastVote[];
  devilsAdvocate: CastVote | null;
  convenedAt: string;
  /** The verification and the checklist (fingerprint) the members were given. */
  verificationId: string | null;
  checklist: string;
}

export interface GateInput {
  /** The run's tasks, phase and tier, and the waivers a person gave (loki_complete always passes them). */
  work?: WorkFacts | null;
  councilEnabled: boolean;
  /** The code now (null: not a git repository). */
  codeState: string | null;
  verification: VerificationFacts | null;
  checklist: Checklist | null;
  council: CouncilFacts | null;
  /** Fingerprint of the checklist now (compared with the one the council judged). */
  checklistFingerprint: string;
}

export interface GateResult {
  accepted: boolean;
  reasons: string[];
  items: { id: string; text: string; heldOut: boolean; verdict: Verdict }[];
  /** Open tasks, the phase, and which of a person's waivers excused something (null when not judged). */
  work: WorkVerdict | null;
}

export function completionGate(g: GateInput): GateResult {
  // Completion means the work was done: open tasks and a phase not reached come first.
  const work = g.work ? judgeWork(g.work) : null;
  const reasons: string[] = [...(work?.reasons ?? [])];
  const v = g.verification;
  if (!v) reasons.push('no verification yet: call loki_verify (the server runs the checks itself)');
  else {
    if (g.codeState !== v.codeState)
      reasons.push(`the code changed after the last verification (${v.id}): call loki_verify again`);
    reasons.push(...v.blocking);
    if (!g.councilEnabled && v.toJudge.length > 0)
      reasons.push(
        'tests of the baseline were removed or thin out, and with the council disabled no one can accept the stated reason: restore them, then call loki_verify again',
      );
  }
  const c = g.council;
  if (g.councilEnabled) {
    if (!c) reasons.push('the council has not convened: call loki_council_convene and have every member vote');
    else {
      const o = c.outcome;
      if (o.state === 'voting')
        reasons.push(
          `no council quorum: ${o.cast} of ${o.size} votes are in; every member must vote (loki_council_vote)`,
        );
      else if (o.state === 'devils-advocate')
        reasons.push(
          "the approval was unanimous, so the devil's advocate must review it: cast its vote (seat 0) with loki_council_vote",
        );
      else if (o.state === 'rejected') {
        reasons.push(...o.reasons.map((r) => `council: ${r}`));
        reasons.push(
          `council ${c.id} rejected the work: address what its members found, change the code, call loki_verify, then convene again`,
        );
      }
      if (o.state !== 'voting' && c.codeState !== g.codeState) {
        reasons.push(
          `the council (${c.id}) voted before the last code change: call loki_verify, then convene it again`,
        );
      } else if (o.state !== 'voting' && v && c.verificationId !== v.id) {
        reasons.push(
          `the council (${c.id}) judged verification ${c.verificationId}, but the latest is ${v.id}: convene it again on the latest facts`,
        );
      }
      if (o.state === 'approved' && c.checklist !== g.checklistFingerprint) {
        reasons.push(
          `the checklist changed after council ${c.id} convened (items marked, waived or given checks): convene it again`,
        );
      }
    }
  }
  // Held-out items without a machine check are judged by the council once it has tallied (with the council
  // disabled, like any other item).
  const judged = c && DECIDED_OUTCOMES.includes(c.outcome.state) ? c.votes : null;
  const items = (g.checklist?.items ?? []).map((i) => {
    const councilMet = !i.heldOut || !g.councilEnabled ? undefined : judged ? heldOutMet(judged, i.id) : null;
    return { id: i.id, text: i.text, heldOut: i.heldOut, verdict: itemVerdict(i, councilMet, c?.threshold ?? 1) };
  });
  for (const i of items) if (!i.verdict.ok) reasons.push(i.verdict.reason);
  return { accepted: reasons.length === 0, reasons: [...new Set(reasons)], items, work };
}

export type Headline = 'VERIFIED' | 'VERIFIED WITH GAPS' | 'NOT VERIFIED';

/** From facts only: a failing fact is NOT VERIFIED; facts that could not be known are gaps. */
export function headline(
  v: VerificationFacts | null,
  checkResults: readonly { ok: boolean }[],
  waivers: number,
  /** What a person waived (open work, the last phase): each is a gap, so the headline is at best WITH GAPS. */
  personWaivers: readonly string[] = [],
): { headline: Headline; why: string[] } {
  if (!v) return { headline: 'NOT VERIFIED', why: ['no verification was run'] };
  const failing = [...v.blocking, ...checkResults.filter((r) => !r.ok).map(() => 'a checklist machine check fails')];
  if (failing.length > 0) return { headline: 'NOT VERIFIED', why: [...new Set(failing)] };
  const gaps = [
    ...v.gaps,
    ...v.toJudge.map((t) => `accepted by the council on the agent's word: ${t}`),
    ...(waivers > 0 ? [`${waivers} checklist item(s) waived (reasons below)`] : []),
    ...personWaivers,
  ];
  return gaps.length > 0
    ? { headline: 'VERIFIED WITH GAPS', why: gaps }
    : {
        headline: 'VERIFIED',
        why: ['every check the server ran passed, with tests, a non-empty diff and a clean scan'],
      };
}
