/**
 * The completion council's rules, pure: seats and roles, blind voting, the tally with its devil's-advocate
 * review of a unanimous approval, staleness against the code, and when the council may or must convene
 * (minimum iterations, interval, stagnation). No I/O.
 */

export const VOTES = ['approve', 'reject', 'cannot-validate'] as const;
export type Vote = (typeof VOTES)[number];

/** Seat roles, in order; a council of N takes the first N. The devil's advocate is a separate, later review. */
export const ROLES: readonly { role: string; focus: string }[] = [
  {
    role: 'requirements-verifier',
    focus:
      'Does the product do what the spec and every checklist item (held-out ones included) ask? Cite the items and the facts that show each.',
  },
  {
    role: 'test-auditor',
    focus:
      'Are the tests real and green: counts above zero, nothing deleted or skipped, assertions that could fail, the behaviour the spec asks for covered?',
  },
  {
    role: 'code-reviewer',
    focus:
      'Is the change correct, secure and maintainable: no secrets, no dead stubs, errors handled, nothing pretended?',
  },
  { role: 'security-reviewer', focus: 'Inputs validated, secrets absent, permissions minimal, dependencies sane.' },
  {
    role: 'user-advocate',
    focus: 'Would a demanding user accept it: errors that say how to fix them, docs, first-run experience.',
  },
  { role: 'operations-reviewer', focus: 'Does it build, start and stop cleanly; are configuration and logs sound?' },
  { role: 'performance-reviewer', focus: 'Any obvious hot path or unbounded growth the spec would not accept?' },
  {
    role: 'maintainer',
    focus: 'Could the next engineer change it safely: small modules, clear names, tests at the right level?',
  },
  { role: 'spec-skeptic', focus: 'Which requirement is most likely unmet or only pretended? Look for it first.' },
];

/** The most members a council has (`council.size`); seats run from 0, the devil's advocate, to the size. */
export const MAX_COUNCIL_SIZE = 9;

export const DEVILS_ADVOCATE = {
  role: 'devils-advocate',
  focus:
    'Every other member approved. Assume they are wrong: find the strongest reason this is not done (a requirement unmet, a test that cannot fail, a fact misread). ' +
    'Approve only if you cannot find one; otherwise reject, which vetoes the completion.',
};

/** The approvals needed: at least two thirds of the council, at least what the operator set, at most its size. */
export function effectiveThreshold(size: number, configured: number): number {
  return Math.min(size, Math.max(Math.ceil((2 * size) / 3), configured));
}

export interface CastVote {
  seat: number;
  role: string;
  vote: Vote;
  rationale: string;
  evidence: string[];
  /** Held-out items this member found met / not met. */
  items: { id: string; met: boolean; note: string }[];
  codeState: string | null;
  at: string;
  agent: string;
}

/** Outcomes that close a council: its tally is final. */
export const DECIDED_OUTCOMES: readonly string[] = ['approved', 'rejected'] satisfies CouncilOutcome['state'][];
/** States of a council still voting (its votes stay blind): the members, then the devil's advocate. */
export const VOTING_STATES: readonly string[] = ['voting', 'devils-advocate'] satisfies CouncilOutcome['state'][];

export type CouncilOutcome =
  | { state: 'voting'; cast: number; size: number }
  | { state: 'devils-advocate'; approvals: number }
  | { state: 'approved'; approvals: number; unanimous: boolean; devilsAdvocate: 'confirmed' | 'not-needed' }
  | { state: 'rejected'; approvals: number; reasons: string[]; vetoed: boolean };

/**
 * The tally once every seat has voted. `cannot-validate` counts against. A unanimous approval stands only when
 * the devil's advocate then approves too; its rejection vetoes.
 */
export function tally(
  votes: readonly CastVote[],
  size: number,
  threshold: number,
  devilsAdvocate: CastVote | null,
): CouncilOutcome {
  if (votes.length < size) return { state: 'voting', cast: votes.length, size };
  const approvals = votes.filter((v) => v.vote === 'approve').length;
  if (approvals < threshold) {
    return {
      state: 'rejected',
      approvals,
      vetoed: false,
      reasons: votes
        .filter((v) => v.vote !== 'approve')
        .map((v) => `${v.role} (seat ${v.seat}) voted ${v.vote}: ${v.rationale}`),
    };
  }
  if (approvals < size) return { state: 'approved', approvals, unanimous: false, devilsAdvocate: 'not-needed' };
  if (!devilsAdvocate) return { state: 'devils-advocate', approvals };
  if (devilsAdvocate.vote === 'approve')
    return { state: 'approved', approvals, unanimous: true, devilsAdvocate: 'confirmed' };
  return {
    state: 'rejected',
    approvals,
    vetoed: true,
    reasons: [
      `the devil's advocate vetoed the unanimous approval (${devilsAdvocate.vote}): ${devilsAdvocate.rationale}`,
    ],
  };
}

/** How many of the council's votes found a held-out item met. */
export function heldOutMet(votes: readonly CastVote[], id: string): number {
  return votes.filter((v) => v.items.some((i) => i.id === id && i.met)).length;
}

export interface ConveneFacts {
  verifiedCurrentCode: boolean;
  /** The verified code differs from the baseline, or a task was completed: there is work to judge. */
  progress: boolean;
  forcedReview: boolean;
}

export function conveneRefusal(f: ConveneFacts): string | undefined {
  if (!f.verifiedCurrentCode)
    return 'the council judges facts, and there are none for the current code: call loki_verify first';
  if (!f.forcedReview && !f.progress)
    return 'nothing to judge yet: the verified code is the baseline and no task is completed. Build something (loki_task_claim), then loki_verify';
  return undefined;
}

/** A council check is due on every `interval`-th iteration once past the minimum. */
export function councilDue(iteration: number, minIterations: number, interval: number): boolean {
  return iteration >= minIterations && iteration > 0 && iteration % interval === 0;
}

export interface Stagnation {
  /** The code fingerprint at the last turn (null: unknown, no git). */
  codeState: string | null;
  /** Consecutive turns that found the same fingerprint. */
  unchangedTurns: number;
}

export type StagnationStep = { stagnation: Stagnation; action: 'none' | 'force-review' | 'stop' };

/** One turn of stagnation tracking: the same code for `limit` turns forces a review; for twice that, stops the run. */
export function trackStagnation(prev: Stagnation, codeState: string | null, limit: number): StagnationStep {
  if (codeState === null) return { stagnation: { codeState: null, unchangedTurns: 0 }, action: 'none' };
  const unchangedTurns = prev.codeState === codeState ? prev.unchangedTurns + 1 : 0;
  const stagnation = { codeState, unchangedTurns };
  if (unchangedTurns >= 2 * limit) return { stagnation, action: 'stop' };
  if (unchangedTurns >= limit) return { stagnation, action: 'force-review' };
  return { stagnation, action: 'none' };
}
