/** The overview: where the run is, its signals, spend and context, what needs a person, and the live activity. */
import { useEffect, useState } from 'preact/hooks';
import {
  Badge,
  Dialog,
  Empty,
  Gauge,
  LineChart,
  NoRun,
  OutcomeNote,
  ReadOnlyNote,
  Section,
  Time,
  View,
  ago,
  fmtTokens,
  useControl,
  useData,
} from './components.js';
import { getState, setState, useStore, type Activity } from './store.js';
import type { AuditPage, ContextPage, ProgressEvent, Status } from './types.js';

export function Overview() {
  const status = useData<Status>('/api/status');
  const context = useData<ContextPage>('/api/context');
  const scope = status.data?.scope;
  useEffect(() => {
    // A server that says the token's scope lets the page disable the controls before any is tried.
    if (scope === 'read' && !getState().readOnly) setState({ readOnly: true });
  }, [scope]);
  return (
    <View loaded={status}>
      {(s) => (
        <div class="stack" data-testid="page-overview">
          {s.run ? <RunHeader s={s} /> : <NoRun />}
          {s.run && <Controls />}
          {(s.alerts.length > 0 || s.problems.length > 0) && <Attention s={s} />}
          <div class="grid2">
            <Section title="Next step" testid="next">
              <p class="next-step">{s.next}</p>
              {s.trust?.forcedReview && (
                <p class="warn small" data-testid="forced-review-note">
                  A person asked for a review: {s.trust.forcedReview}
                </p>
              )}
            </Section>
            <Usage s={s} context={context.data} />
          </div>
          <div class="grid2">
            <ActivityFeed />
            <Sessions s={s} />
          </div>
        </div>
      )}
    </View>
  );
}

function RunHeader({ s }: { s: Status }) {
  const run = s.run!;
  const current = run.phases.indexOf(run.phase);
  const completed = run.status === 'completed';
  return (
    <Section
      title={run.spec?.title ?? 'Run'}
      testid="run"
      actions={
        <Badge kind={run.status} testid="run-status">
          {run.status}
        </Badge>
      }
    >
      <ol class="phases" data-testid="phases" aria-label="phases">
        {run.phases.map((p, i) => {
          const state = completed || i < current ? 'done' : i === current ? 'current' : 'next';
          return (
            <li
              key={p}
              class={`phase ${state}`}
              data-testid={`phase-${p}`}
              data-state={state}
              aria-current={state === 'current' ? 'step' : undefined}
            >
              <span class="phase-mark">{state === 'done' ? '✓' : i + 1}</span>
              {p}
            </li>
          );
        })}
      </ol>
      <dl class="facts">
        <div>
          <dt>Phase</dt>
          <dd data-testid="phase">{run.phase}</dd>
        </div>
        <div>
          <dt>Tier</dt>
          <dd data-testid="tier">{run.tier}</dd>
        </div>
        <div>
          <dt>Iteration</dt>
          <dd data-testid="iteration">
            {run.iteration} of {run.maxIterations}
          </dd>
        </div>
        <div>
          <dt>Run</dt>
          <dd class="mono" data-testid="run-id">
            {run.runId}
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <Time at={run.startedAt} />
          </dd>
        </div>
        {s.queue && (
          <div>
            <dt>Tasks</dt>
            <dd data-testid="task-counts">
              {s.queue.counts.completed} of {s.queue.total} done
              {s.queue.counts['dead-letter'] > 0 && (
                <span class="bad"> · {s.queue.counts['dead-letter']} dead-letter</span>
              )}
            </dd>
          </div>
        )}
        {s.trust && (
          <div>
            <dt>Checklist</dt>
            <dd>
              {s.trust.checklist.met} of {s.trust.checklist.total} met
              {s.trust.checklist.waived > 0 && <span class="warn"> · {s.trust.checklist.waived} waived</span>}
              {s.trust.checklist.failing > 0 && <span class="bad"> · {s.trust.checklist.failing} failing</span>}
            </dd>
          </div>
        )}
      </dl>
      <div class="signals" data-testid="signals">
        <Signal name="PAUSE" on={s.signals.pause} testid="signal-pause" />
        <Signal name="STOP" on={s.signals.stop} testid="signal-stop" />
        <Signal
          name="HUMAN_INPUT"
          on={s.signals.humanInput.status !== 'none'}
          testid="signal-human-input"
          detail={s.signals.humanInput.status}
        />
      </div>
    </Section>
  );
}

function Signal({ name, on, testid, detail }: { name: string; on: boolean; testid: string; detail?: string }) {
  return (
    <span
      class={`signal ${on ? 'on' : 'off'}`}
      data-testid={testid}
      data-on={String(on)}
      title={on ? `${name} is set` : `no ${name}`}
    >
      {name}
      {on && detail && detail !== 'none' ? `: ${detail}` : on ? ' set' : ''}
    </span>
  );
}

function Controls() {
  const { readOnly } = useStore();
  const c = useControl();
  const [dialog, setDialog] = useState<'stop' | 'review' | null>(null);
  const [reason, setReason] = useState('');
  const signal = (verb: 'pause' | 'resume' | 'stop') =>
    c.run(`/api/control/${verb}`, {}, (r) => String(r.message ?? `${verb}: done`));
  return (
    <Section title="Controls" testid="controls">
      <div class="buttons">
        <button
          type="button"
          data-testid="control-pause"
          disabled={readOnly || c.busy}
          onClick={() => void signal('pause')}
        >
          Pause
        </button>
        <button
          type="button"
          data-testid="control-resume"
          disabled={readOnly || c.busy}
          onClick={() => void signal('resume')}
        >
          Resume
        </button>
        <button
          type="button"
          class="danger"
          data-testid="control-stop"
          disabled={readOnly || c.busy}
          onClick={() => setDialog('stop')}
        >
          Stop
        </button>
        <button
          type="button"
          data-testid="control-force-review"
          disabled={readOnly || c.busy}
          onClick={() => setDialog('review')}
        >
          Force review
        </button>
      </div>
      <OutcomeNote outcome={c.outcome} />
      <ReadOnlyNote />
      {dialog === 'stop' && (
        <Dialog title="Stop the run?" testid="stop-dialog" onClose={() => setDialog(null)}>
          <p>The agent ends at its next turn. `loki resume` clears the stop before a new start.</p>
          <div class="buttons end">
            <button type="button" onClick={() => setDialog(null)}>
              Cancel
            </button>
            <button
              type="button"
              class="danger"
              data-testid="stop-confirm"
              onClick={() => {
                setDialog(null);
                void signal('stop');
              }}
            >
              Stop the run
            </button>
          </div>
        </Dialog>
      )}
      {dialog === 'review' && (
        <Dialog title="Force a review" testid="review-dialog" onClose={() => setDialog(null)}>
          <p>The agent is told to verify and convene the council on its next turn.</p>
          <form
            method="dialog"
            onSubmit={(e) => {
              e.preventDefault();
              setDialog(null);
              const r = reason.trim();
              setReason('');
              void c.run('/api/control/force-review', r ? { reason: r } : {}, (x) =>
                String(x.message ?? 'Review requested.'),
              );
            }}
          >
            <label>
              Reason (optional)
              <input
                data-testid="review-reason"
                value={reason}
                maxLength={1000}
                onInput={(e) => setReason(e.currentTarget.value)}
              />
            </label>
            <div class="buttons end">
              <button type="button" onClick={() => setDialog(null)}>
                Cancel
              </button>
              <button type="submit" class="primary" data-testid="review-confirm">
                Force review
              </button>
            </div>
          </form>
        </Dialog>
      )}
    </Section>
  );
}

function Attention({ s }: { s: Status }) {
  return (
    <Section title="Needs attention" testid="attention">
      <ul class="list">
        {s.alerts.map((a) => (
          <li key={a.key} class={`alert ${a.level}`} data-testid="alert">
            <Badge kind={a.level}>{a.level}</Badge> {a.message}
          </li>
        ))}
        {s.problems.map((p) => (
          <li key={p} class="alert warning" data-testid="problem">
            <Badge kind="warning">problem</Badge> {p}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Usage({ s, context }: { s: Status; context: ContextPage | undefined }) {
  const limit = context?.limitUsd ?? s.budget.limitUsd;
  const spent = context?.measured ? context.costUsd : s.budget.spentUsd;
  return (
    <Section title="Budget and context" testid="usage">
      <Gauge
        label="Budget"
        testid="budget-gauge"
        pct={context?.budgetPct ?? (limit && spent !== null ? (spent / limit) * 100 : null)}
        text={
          spent === null || spent === undefined
            ? limit
              ? `limit $${limit.toFixed(2)}, spend not measured`
              : s.budget.note
            : limit
              ? `$${spent.toFixed(2)} of $${limit.toFixed(2)}`
              : `$${spent.toFixed(2)} (no limit)`
        }
      />
      <Gauge
        label="Context"
        testid="context-gauge"
        pct={context?.contextPct ?? null}
        text={
          context?.measured
            ? `${fmtTokens(context.contextTokens)} of ${fmtTokens(context.windowTokens)} (${context.contextPct ?? 0}%)`
            : 'not measured'
        }
      />
      {context && (
        <>
          <LineChart samples={context.timeline} max={context.windowTokens} />
          {context.measured ? (
            <p class="muted small legend">
              <span class="key ctx">context</span> <span class="key cost">spend</span> · {context.toolCalls} tool calls
            </p>
          ) : (
            <p class="muted small">{context.note}</p>
          )}
        </>
      )}
    </Section>
  );
}

function Sessions({ s }: { s: Status }) {
  return (
    <Section title="Sessions" testid="sessions">
      {s.sessions.length === 0 ? (
        <Empty>No agent session has connected yet.</Empty>
      ) : (
        <ul class="list">
          {s.sessions.map((x) => (
            <li key={x.id} data-testid="session">
              <Badge kind={x.liveness}>{x.liveness}</Badge> <span class="mono">{x.id}</span> {x.provider}
              {x.pid !== null && <span class="muted"> pid {x.pid}</span>}{' '}
              <span class="muted">
                · <Time at={x.updatedAt} />
              </span>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function ActivityFeed() {
  const { activity, live } = useStore();
  // Until the run moves while this page is open, the latest entries of the audit log stand in.
  const recent = useData<AuditPage>(activity.length < 8 ? '/api/audit?limit=12' : null);
  const earlier = recent.data?.entries ?? [];
  return (
    <Section
      title="Live activity"
      testid="activity"
      actions={<span class="muted small">{live === 'live' ? 'as it happens' : 'connecting…'}</span>}
    >
      {activity.length === 0 && earlier.length === 0 ? (
        <Empty testid="activity-empty">Waiting for the run to move: events appear here as they happen.</Empty>
      ) : (
        <ol class="feed">
          {activity.slice(0, 40).map((a) => (
            <FeedItem key={a.n} a={a} />
          ))}
          {activity.length < 8 &&
            earlier.slice(0, 12 - activity.length).map((e) => (
              <li key={`a${e.seq}`} class="feed-item f-past" data-testid="audit-item">
                <span class="feed-time" title={new Date(e.at).toLocaleString()}>
                  {ago(Date.parse(e.at))}
                </span>
                <span>
                  <span class="mono">{e.action}</span>
                  {e.target ? <span class="mono muted"> {e.target}</span> : null}
                  <span class="muted small"> · {e.actor}</span>
                </span>
              </li>
            ))}
        </ol>
      )}
    </Section>
  );
}

function FeedItem({ a }: { a: Activity }) {
  const { kind, text } = describe(a.event);
  return (
    <li class={`feed-item f-${kind}`} data-testid="activity-item" data-type={a.event.type}>
      <span class="feed-time" title={new Date(a.at).toLocaleString()}>
        {ago(a.at)}
      </span>
      <span>{text}</span>
    </li>
  );
}

const named = (id: string, title: string | null) => (title ? `${id} "${title}"` : id);

export function describe(e: ProgressEvent): { kind: 'ok' | 'bad' | 'info' | 'warn'; text: string } {
  switch (e.type) {
    case 'phase':
      return { kind: 'info', text: `Phase ${e.from} → ${e.to}${e.auto ? ' (passed on its own)' : ''}` };
    case 'task-claimed':
      return {
        kind: 'info',
        text: `Claimed ${named(e.id, e.title)}${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`,
      };
    case 'task-completed':
      return { kind: 'ok', text: `Completed ${named(e.id, e.title)}` };
    case 'task-failed':
      return {
        kind: 'bad',
        text: `${e.deadLetter ? 'Dead-lettered' : 'Failed'} ${named(e.id, e.title)}${e.error ? `: ${e.error}` : ''}`,
      };
    case 'verify': {
      const v = Object.entries(e.verdicts)
        .filter(([, x]) => x !== 'absent')
        .map(([k, x]) => `${k} ${x}`)
        .join(', ');
      return {
        kind: e.blocking > 0 ? 'bad' : 'ok',
        text: `Verified ${e.id}: ${v || 'no checks'}${e.blocking ? `, ${e.blocking} blocking` : ''}`,
      };
    }
    case 'checklist':
      return { kind: e.failed > 0 ? 'warn' : 'ok', text: `Checklist checks: ${e.passed} passed, ${e.failed} failed` };
    case 'council-convened':
      return { kind: 'info', text: `Council ${e.council} convened${e.size ? ` (${e.size} seats)` : ''}` };
    case 'council-vote':
      return { kind: 'info', text: `Council ${e.council}: seat ${e.seat ?? '?'} voted (${e.state})` };
    case 'council-outcome':
      if (e.state === 'devils-advocate')
        return { kind: 'info', text: `Council ${e.council}: unanimous, the devil's advocate votes next` };
      return {
        kind: e.state === 'approved' ? 'ok' : 'bad',
        text: `Council ${e.council} ${e.state}${e.approvals !== null ? ` (${e.approvals} approvals)` : ''}${e.reasons.length ? `: ${e.reasons.join('; ')}` : ''}`,
      };
    case 'completion-refused':
      return { kind: 'warn', text: `Completion refused${e.reason ? `: ${e.reason}` : ''}` };
    case 'complete':
      return { kind: 'ok', text: `Complete: ${e.headline ?? 'done'}` };
    case 'run-stopped':
      return { kind: 'bad', text: `Run stopped${e.reason ? `: ${e.reason}` : ''}` };
    case 'signal':
      return { kind: 'warn', text: `${e.signal.toUpperCase()} by ${e.by}` };
    case 'directive':
      return { kind: 'info', text: `Directive: ${e.status}` };
    case 'budget-exceeded':
      return {
        kind: 'bad',
        text: `Budget exceeded${e.spentUsd !== null ? `: $${e.spentUsd.toFixed(2)}` : ''}${e.limitUsd !== null ? ` of $${e.limitUsd.toFixed(2)}` : ''}`,
      };
    case 'usage':
      return { kind: 'info', text: `Usage: $${e.costUsd.toFixed(2)}, context ${fmtTokens(e.contextTokens)}` };
  }
}
