/**
 * `next`: the one step every result tells the agent to take. It is written so that a model following it
 * literally is never refused: the call it names is one the server accepts in the state it describes, with the
 * arguments only the server knows (ids, claim tokens, council and seat) already filled in. What only the agent can
 * supply (a summary, evidence, a vote) is named after the call, never invented here.
 *
 * The form, on the last line of every result (`Next: ...`):
 *   [work on <task> "<title>", then ]loki_<tool> {<json arguments>}[ (add <fields>)][ -- <why>]
 * or, when no loki call comes next, plain words (end the session, wait for the user).
 */
import { VOTING_STATES } from '../domain/council.js';
import { CLAIMABLE_STATES, type TaskState } from '../domain/tasks.js';
import type { Briefing } from './briefing.js';
import type { RunState } from './records.js';

export interface NextCall {
  tool: string;
  args: Record<string, unknown>;
  /** The fields the agent adds itself (named, never filled in). */
  add?: string;
}

export interface NextStep {
  /** Work to do first with the host's own tools, e.g. `work on T-0002 "Add the parser"`. */
  work?: string;
  call?: NextCall;
  /** Why; or, with no call, what to do instead. */
  note?: string;
}

export function formatNext(s: NextStep): string {
  const call = s.call
    ? `${s.call.tool} ${JSON.stringify(s.call.args)}${s.call.add ? ` (add ${s.call.add})` : ''}`
    : undefined;
  const head = [s.work, call].filter(Boolean).join(', then ');
  if (!head) return s.note ?? '';
  return s.note ? `${head} -- ${s.note}` : head;
}

/** What the last phase still needs before completion is accepted (gathered by completion.ts, judged here). */
export interface CompletionStage {
  /** Tasks of the run completion would still refuse on (dead-lettered, or open in another phase), unwaived. */
  workLeft: readonly { id: string; status: TaskState }[];
  /**
   * The reasons the last loki_complete was refused, while no verification has come since: naming loki_complete
   * again would only be refused again.
   */
  refused: readonly string[];
  /** The latest verification against the code now. */
  verification: { id: string; current: boolean; blocking: readonly string[] } | null;
  /** Checklist items whose machine check fails (visible ones). */
  failingItems: readonly string[];
  /** Visible items without a machine check that are neither met nor waived: the agent marks them met. */
  openItems: readonly string[];
  councilEnabled: boolean;
  /** The latest council, when it judged the code, the verification and the checklist as they are now. */
  council: {
    id: string;
    state: 'voting' | 'devils-advocate' | 'approved' | 'rejected';
    /** The first seat (1..size) still to vote while voting. */
    nextSeat: number | null;
    reasons: readonly string[];
  } | null;
}

/** Tasks claimed by a session that has stopped: the next session resumes them first. */
export interface Orphan {
  id: string;
  title: string;
  session: string;
}

export interface NextFacts {
  completion?: CompletionStage | undefined;
  /** Why the current phase (with nothing open) cannot pass yet: its exit criteria that do not hold. */
  phaseHeldBy?: readonly string[] | undefined;
  /** The run came back to this phase (QA found a bug): it stays until the agent moves on itself. */
  enteredBack?: boolean;
  orphans?: readonly Orphan[];
}

/**
 * One step for the agent. Pure over the briefing and the facts gathered for it (completion facts only on the
 * tier's last phase with nothing open there; orphaned claims only when there are some).
 */
export function nextStep(b: Briefing, run: RunState | undefined, facts: NextFacts = {}): NextStep {
  if (
    b.problems.length > 0 &&
    b.problems.some((p) => p.startsWith('.loki/config.yaml') || p.includes('LOKI_') || p.startsWith('council.'))
  ) {
    return { note: `fix the configuration first: ${b.problems[0]}` };
  }
  if (!b.run || !run)
    return {
      call: { tool: 'loki_start', args: {}, add: '`spec` (a path inside the project) or `specText`' },
      note: 'no run yet',
    };
  if (b.signals.stop || b.run.status === 'stopped') {
    return {
      note: `the run is stopped (${run.stopReason ?? 'STOP signal'}): finish the current edit, start nothing new, and end the session`,
    };
  }
  if (b.signals.pause)
    return {
      note: 'PAUSED by the user (.loki/PAUSE): do nothing and end the turn; the user resumes with `loki resume`',
    };
  if (b.run.status === 'completed')
    return { note: 'the run is COMPLETE: report the receipt to the user and end the session' };
  if (b.signals.humanInput.status === 'delivered')
    return {
      note: 'the user sent a directive (the human input above): act on it first, as data from the user, then call loki_status',
    };
  const where = `phase ${b.run.phase} (${b.run.phases.indexOf(b.run.phase) + 1}/${b.run.phases.length})`;
  const q = b.queue;
  const mine = q?.mine[0];
  if (mine) {
    return mine.expired
      ? {
          call: { tool: 'loki_task_claim', args: { taskId: mine.id } },
          note: `your lease on ${mine.id} ran out; claim it again`,
        }
      : {
          work: `finish ${mine.id} "${mine.title}"`,
          call: { tool: 'loki_task_complete', args: { id: mine.id }, add: 'the claim token, summary, evidence' },
        };
  }
  const t = b.trust;
  // A forced review comes before new work: that is what forcing it means. (The council judges it; with the
  // council disabled there is no review to force.)
  if (t?.forcedReview && facts.completion?.councilEnabled !== false) {
    return reviewStep(facts.completion, `forced review (${t.forcedReview})`);
  }
  const orphan = facts.orphans?.[0];
  if (orphan)
    return {
      call: { tool: 'loki_task_claim', args: { taskId: orphan.id } },
      note: `${orphan.id} "${orphan.title}" was claimed by session ${orphan.session}, which stopped: resume it (or release it with loki_task_update {"id":"${orphan.id}","action":"release"})`,
    };
  if (q?.next)
    return {
      call: { tool: 'loki_task_claim', args: {} },
      note: `${where}: the next task is ${q.next.id} "${q.next.title}"`,
    };
  const lastPhase = b.run.phases.at(-1) === b.run.phase;
  if (q && q.openInPhase === 0 && facts.enteredBack)
    return {
      call: { tool: 'loki_task_add', args: {}, add: 'the tasks of the rework' },
      note: `${where}: the run came back here; add what must be redone, then work it (or loki_phase_advance when done)`,
    };
  if (q && q.openInPhase === 0 && !lastPhase && b.run.nextPhase) {
    return q.total === 0
      ? {
          call: { tool: 'loki_task_add', args: {}, add: "this phase's tasks" },
          note: `${where}: the queue is empty`,
        }
      : facts.phaseHeldBy?.length
        ? {
            work: `make the exit criteria of ${b.run.phase} hold (${facts.phaseHeldBy[0]})`,
            call: { tool: 'loki_phase_advance', args: {} },
          }
        : {
            call: { tool: 'loki_phase_advance', args: {} },
            note: `${where} has no open tasks and its exit criteria hold`,
          };
  }
  if (lastPhase && q && q.openInPhase === 0 && facts.completion) return completionStep(facts.completion, where);
  if (q && q.inProgress > 0)
    return {
      note: `${where}: no task is ready; ${q.inProgress} in progress by other agents. Review their work, add tasks with loki_task_add, or call loki_status later`,
    };
  return {
    call: { tool: 'loki_task_list', args: { status: ['pending', 'blocked', 'failed'] } },
    note: `${where}: no task is ready (${q?.waiting ?? 0} wait on dependencies, ${q?.counts.blocked ?? 0} blocked); unblock or re-plan them with loki_task_update`,
  };
}

/** The way to completion once the last phase has nothing open: verify, mark the checklist, council, complete. */
function completionStep(c: CompletionStage, where: string): NextStep {
  const left = c.workLeft[0];
  if (left) {
    const shown = `${c.workLeft
      .slice(0, 5)
      .map((w) => `${w.id} ${w.status}`)
      .join(', ')}${c.workLeft.length > 5 ? ', ...' : ''}`;
    const why = `${where}: completion still needs ${c.workLeft.length} task(s) of the run (${shown})`;
    const waive = 'or ask a person to waive it (`loki waive task <id> --reason "..."`)';
    const dead = c.workLeft.find((w) => w.status === 'dead-letter');
    if (dead)
      return {
        call: { tool: 'loki_task_update', args: { id: dead.id, action: 'retry' } },
        note: `${why}; put the dead-lettered one back and finish it, ${waive}`,
      };
    if (CLAIMABLE_STATES.includes(left.status))
      return { call: { tool: 'loki_task_claim', args: { taskId: left.id } }, note: why };
    if (left.status === 'in-progress')
      return { note: `${why}; ${left.id} is in progress by another agent: wait for it, then call loki_status` };
    return {
      call: { tool: 'loki_task_list', args: { status: ['blocked'] } },
      note: `${why}; unblock what is blocked (loki_task_update action "unblock") once its reason is resolved, ${waive}`,
    };
  }
  if (c.refused.length > 0)
    return {
      work: `address why completion was refused (${c.refused[0]}${c.refused.length > 1 ? `, and ${c.refused.length - 1} more` : ''})`,
      call: { tool: 'loki_verify', args: {} },
    };
  const v = c.verification;
  if (!v || !v.current || v.blocking.length > 0) return verifyStep(v, where);
  if (c.failingItems.length > 0)
    return {
      work: `make the failing checklist items pass (${c.failingItems.slice(0, 5).join(', ')})`,
      call: { tool: 'loki_verify', args: {} },
    };
  if (c.openItems.length > 0)
    return {
      call: {
        tool: 'loki_checklist_set',
        args: { items: c.openItems.slice(0, 50).map((id) => ({ id, status: 'met' })) },
        add: '`evidence` to each item: what shows it holds',
      },
      note: 'only items that really hold; do the work first for any that does not',
    };
  if (!c.councilEnabled) return { call: { tool: 'loki_complete', args: {} } };
  if (c.council?.state === 'approved')
    return { call: { tool: 'loki_complete', args: {} }, note: `council ${c.council.id} approved` };
  return councilStep(c, 'the verification passed');
}

/** A forced review: verify the code as it is, then the council judges it (completion is not claimed). */
function reviewStep(c: CompletionStage | undefined, why: string): NextStep {
  const v = c?.verification ?? null;
  if (!c || !v || !v.current || v.blocking.length > 0) {
    const step = verifyStep(v, why);
    return { ...step, note: `${why}: verify, then the council judges the work so far` };
  }
  return councilStep(c, why);
}

/** Verify the code as it is; when the latest verification of it blocks, fix that first. */
function verifyStep(v: CompletionStage['verification'], where: string): NextStep {
  if (v?.current && v.blocking.length > 0)
    return {
      work: `fix what blocks (${v.blocking[0]}${v.blocking.length > 1 ? `, and ${v.blocking.length - 1} more` : ''})`,
      call: { tool: 'loki_verify', args: {} },
    };
  return {
    call: { tool: 'loki_verify', args: {} },
    note: `${where}: the server runs the build, test and lint checks on the code as it is now`,
  };
}

/** The council on a passing verification of the code as it is: convene, resume its voting, or rework. */
function councilStep(c: CompletionStage, why: string): NextStep {
  const k = c.council;
  if (k?.state === 'rejected')
    return {
      work: `address what council ${k.id} found (${k.reasons[0] ?? 'see its tally'})`,
      call: { tool: 'loki_verify', args: {} },
      note: 'the council judges changed code only',
    };
  // Still voting: convening again hands back the brief whose turn it is (vote results name the next vote
  // themselves, with that brief above them).
  if (k && VOTING_STATES.includes(k.state))
    return {
      call: { tool: 'loki_council_convene', args: {} },
      note: `council ${k.id} is voting: this hands you the brief of ${k.state === 'voting' ? `seat ${k.nextSeat}` : "the devil's advocate"}`,
    };
  return {
    call: { tool: 'loki_council_convene', args: {} },
    note: `${why}; the council judges it, one member at a time`,
  };
}

/** After a brief: the vote it asks for (held-out items an approval must judge named, never judged here). */
export function voteStep(council: string, seat: number, heldOut: readonly string[]): NextStep {
  return {
    work:
      seat === 0
        ? "judge what the devil's advocate brief above lists"
        : `judge as the brief of seat ${seat} above says`,
    call: {
      tool: 'loki_council_vote',
      args: { council, seat },
      // No parentheses inside: the add clause is itself in parentheses on the Next line.
      add: `vote, rationale, evidence: fact keys from the brief${seat !== 0 && heldOut.length ? `, items: {id, met, note} for ${heldOut.join(', ')}` : ''}`,
    },
  };
}
