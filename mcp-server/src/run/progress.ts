/**
 * What a run does, as events, read from the run's own records (the audit log and the hooks' usage), never from a
 * host's output: the same events whichever host does the work, and nothing a model writes can fake one.
 */
import type { AuditEntry } from '../audit/chain.js';
import type { Project } from '../project.js';
import { readHookState } from './hook-state.js';

export type { ProgressEvent } from './progress-events.js';
import type { ProgressEvent } from './progress-events.js';

type Data = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : null);
const num = (v: unknown) => (typeof v === 'number' ? v : null);

/** Follows the audit log from a position: each `poll()` returns what happened since the last one. */
export class ProgressWatch {
  private next: number;
  private lastCost = -1;
  private lastContext = -1;
  /** Entries appended by someone other than `loki run` itself since the last `takeActivity()`. */
  private activity = 0;

  constructor(
    private readonly project: Project,
    from: number,
    private readonly self: string,
  ) {
    this.next = from;
  }

  poll(): ProgressEvent[] {
    const store = this.project.existingStore();
    if (!store) return [];
    const out: ProgressEvent[] = [];
    for (;;) {
      const entries = store.audit.entries(this.next, 500);
      for (const e of entries) {
        this.next = e.seq + 1;
        if (e.actor !== this.self && !e.actor.endsWith(` via ${this.self}`)) this.activity += 1;
        const ev = this.eventOf(e);
        if (ev) out.push(...ev);
      }
      if (entries.length < 500) break;
    }
    return out;
  }

  /**
   * Read nothing before `seq`: a watcher that only shows the latest events (the dashboard's feed) skips a burst
   * rather than reading every entry of it.
   */
  skipTo(seq: number): void {
    if (seq > this.next) this.next = seq;
  }

  /** Usage as the Claude Code hooks measured it, when it changed by a cent or more (other hosts report none). */
  usage(runId: string): ProgressEvent | undefined {
    const hooks = readHookState(this.project.existingStore(), runId);
    if (hooks.toolCalls === 0) return undefined;
    const cost = hooks.usage.costUsd;
    const context = hooks.usage.contextTokens;
    if (cost - this.lastCost < 0.01 && Math.abs(context - this.lastContext) < 10_000) return undefined;
    this.lastCost = cost;
    this.lastContext = context;
    return { type: 'usage', costUsd: Number(cost.toFixed(4)), contextTokens: context };
  }

  /** How many entries others appended since the last call (an agent that did anything at all). */
  takeActivity(): number {
    const n = this.activity;
    this.activity = 0;
    return n;
  }

  private title(id: string): string | null {
    try {
      return this.project.tasks().get(id)?.title ?? null;
    } catch {
      return null;
    }
  }

  private eventOf(e: AuditEntry): ProgressEvent[] | undefined {
    const d = (e.data && typeof e.data === 'object' ? e.data : {}) as Data;
    const id = e.target ?? '';
    switch (e.action) {
      case 'phase.advance':
        return [{ type: 'phase', from: String(d.from), to: String(d.to), auto: d.auto === true }];
      case 'task.claim':
        return [{ type: 'task-claimed', id, title: this.title(id), attempt: num(d.attempt) }];
      case 'task.complete':
        return [{ type: 'task-completed', id, title: this.title(id) }];
      case 'task.fail':
      case 'task.dead-letter':
        return [
          {
            type: 'task-failed',
            id,
            title: this.title(id),
            error: str(d.error),
            deadLetter: e.action === 'task.dead-letter',
          },
        ];
      case 'verify.run':
        return [
          {
            type: 'verify',
            id: str(d.id) ?? id,
            verdicts: (d.verdicts && typeof d.verdicts === 'object' ? d.verdicts : {}) as Record<string, string>,
            blocking: num(d.blocking) ?? 0,
            filesChanged: num(d.filesChanged),
          },
        ];
      case 'checklist.evaluate':
        return [{ type: 'checklist', passed: num(d.passed) ?? 0, failed: num(d.failed) ?? 0 }];
      case 'council.convene':
        return [{ type: 'council-convened', council: String(d.council), size: num(d.size) }];
      case 'council.vote': {
        // A vote's direction stays hidden until the tally, as in `loki council status`: only that a seat voted.
        const vote: ProgressEvent = {
          type: 'council-vote',
          council: String(d.council),
          seat: num(d.seat),
          state: String(d.outcome),
        };
        const tally = d.tally && typeof d.tally === 'object' ? (d.tally as Data) : undefined;
        if (!tally || d.outcome === 'voting') return [vote];
        return [
          vote,
          {
            type: 'council-outcome',
            council: String(d.council),
            state: String(d.outcome),
            approvals: num(tally.approvals),
            reasons: Array.isArray(tally.reasons) ? tally.reasons.map(String).slice(0, 5) : [],
          },
        ];
      }
      case 'run.complete.refused':
        return [{ type: 'completion-refused', reason: str(d.first) }];
      case 'run.complete':
        return [{ type: 'complete', headline: str(d.headline), receipt: str(d.receipt) }];
      case 'run.stop':
        return [{ type: 'run-stopped', reason: str(d.reason) }];
      case 'run.stagnated':
        return [{ type: 'run-stopped', reason: `stagnated: no code change in ${num(d.unchangedTurns) ?? '?'} turns` }];
      case 'signal.stop':
      case 'signal.pause':
      case 'signal.resume':
        return [{ type: 'signal', signal: e.action.slice('signal.'.length), by: e.actor }];
      case 'human-input.delivered':
      case 'human-input.rejected':
        return [{ type: 'directive', status: e.action.slice('human-input.'.length) }];
      case 'budget.exceeded':
        return [{ type: 'budget-exceeded', spentUsd: num(d.spentUsd), limitUsd: num(d.limitUsd) }];
      default:
        return undefined;
    }
  }
}
