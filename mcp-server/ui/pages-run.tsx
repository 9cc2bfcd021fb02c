/** The run's pages: the task queue, verifications, the checklist (with waivers) and the council. */
import { useState } from 'preact/hooks';
import {
  Badge,
  Dialog,
  Empty,
  ErrorNote,
  NoRun,
  OutcomeNote,
  ReadOnlyNote,
  Section,
  Table,
  Time,
  View,
  fmtMs,
  useControl,
  useData,
} from './components.js';
import { useStore } from './store.js';
import {
  TASK_STATES,
  type ChecklistItem,
  type ChecklistPage,
  type CouncilPage,
  type Task,
  type TaskState,
  type Tasks,
  type Verifications,
} from './types.js';

export function TasksPage() {
  const [filter, setFilter] = useState<TaskState | 'all'>('all');
  const loaded = useData<Tasks>(filter === 'all' ? '/api/tasks' : `/api/tasks?status=${filter}`);
  return (
    <View loaded={loaded}>
      {(d) => {
        if (!d.runId) return <NoRun />;
        // The counts are of every task, whatever the filter.
        const c = d.counts!;
        const total = Object.values(c).reduce((a, b) => a + b, 0);
        return (
          <div class="stack" data-testid="page-tasks">
            <div class="filters" role="group" aria-label="filter by state" data-testid="task-filters">
              <button
                type="button"
                class={filter === 'all' ? 'chip on' : 'chip'}
                aria-pressed={filter === 'all'}
                data-testid="filter-all"
                onClick={() => setFilter('all')}
              >
                all <span class="count">{total}</span>
              </button>
              {TASK_STATES.map((s) => (
                <button
                  type="button"
                  key={s}
                  class={`chip ${filter === s ? 'on' : ''} ${s === 'dead-letter' && c[s] > 0 ? 'bad' : ''}`}
                  aria-pressed={filter === s}
                  data-testid={`filter-${s}`}
                  onClick={() => setFilter(s)}
                >
                  {s} <span class="count">{c[s]}</span>
                </button>
              ))}
            </div>
            <Section title={`Queue (${d.tasks.length})`} testid="tasks">
              {d.tasks.length === 0 ? (
                <Empty testid="tasks-empty">
                  {filter === 'all' ? 'No tasks yet: the agent adds them from the spec.' : `No ${filter} tasks.`}
                </Empty>
              ) : (
                <Table cols={['Id', 'Title', 'Status', 'Priority', 'Phase', 'Lease', 'Attempts']} testid="tasks-table">
                  {d.tasks.map((t) => (
                    <TaskRow key={t.id} t={t} />
                  ))}
                </Table>
              )}
            </Section>
          </div>
        );
      }}
    </View>
  );
}

function TaskRow({ t }: { t: Task }) {
  const expired = t.status === 'in-progress' && (!t.lease || Date.parse(t.lease.expiresAt) <= Date.now());
  const last = [...t.attempts].reverse().find((a) => a.error);
  return (
    <tr class={t.status === 'dead-letter' ? 'dead' : ''} data-testid={`task-${t.id}`} data-status={t.status}>
      <td class="mono">{t.id}</td>
      <td class="wrap">{t.title}</td>
      <td>
        <Badge kind={t.status}>{t.status}</Badge>
        {t.blockedReason && <div class="muted small">{t.blockedReason}</div>}
      </td>
      <td>
        <Badge kind={`p-${t.priority}`}>{t.priority}</Badge>
      </td>
      <td>{t.phase}</td>
      <td>
        {t.lease ? (
          <>
            {t.lease.agent}
            <div class={expired ? 'bad small' : 'muted small'} data-testid={expired ? 'lease-expired' : undefined}>
              {expired ? 'expired ' : 'until '}
              <Time at={t.lease.expiresAt} />
            </div>
          </>
        ) : expired ? (
          <span class="bad small">expired</span>
        ) : (
          <span class="muted">–</span>
        )}
      </td>
      <td class="wrap">
        {t.attempts.length}
        {t.failures > 0 && <span class="bad"> ({t.failures} failed)</span>}
        {last && (
          <div class="bad small" data-testid="last-error">
            {last.error}
          </div>
        )}
      </td>
    </tr>
  );
}

export function VerificationPage() {
  const loaded = useData<Verifications>('/api/verification');
  return (
    <View loaded={loaded}>
      {(d) =>
        !d.runId ? (
          <NoRun />
        ) : d.verifications.length === 0 ? (
          <Empty testid="verification-empty">
            No verification yet: the agent runs loki_verify once there is code to check.
          </Empty>
        ) : (
          <div class="stack" data-testid="page-verification">
            {d.verifications.map((v, i) => (
              <Section
                key={v.id}
                title={`${v.id}${i === 0 ? ' (latest)' : ''}`}
                testid={`verification-${v.id}`}
                actions={
                  <span class="muted small">
                    <Time at={v.finishedAt ?? v.startedAt} />
                    {v.cleanRoom ? ' · clean room' : ''}
                  </span>
                }
              >
                <p class="muted small">
                  {v.diff.filesChanged} files changed, +{v.diff.insertions} −{v.diff.deletions}
                  {v.codeState && <span class="mono"> · code {v.codeState.slice(0, 10)}</span>}
                  {v.secrets > 0 && <span class="bad"> · {v.secrets} secret findings</span>}
                </p>
                <Table cols={['Check', 'Verdict', 'Command', 'Duration', 'Tests']}>
                  {v.checks.map((c) => (
                    <tr key={c.name} data-testid={`check-${c.name}`} data-verdict={c.verdict}>
                      <td>{c.name}</td>
                      <td>
                        <Badge kind={c.verdict}>{c.verdict}</Badge>
                      </td>
                      <td class="wrap">
                        {c.command ? <code>{c.command}</code> : <span class="muted">none</span>}
                        {c.reason && <div class="muted small">{c.reason}</div>}
                      </td>
                      <td>{fmtMs(c.durationMs)}</td>
                      <td>
                        {c.tests ? (
                          <span data-testid="test-counts">
                            {c.tests.passed} passed, {c.tests.failed} failed, {c.tests.skipped} skipped
                          </span>
                        ) : (
                          <span class="muted">–</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
                <Findings title="Blocking" kind="bad" items={v.findings.blocking} testid="blocking" />
                <Findings title="Gaps" kind="warn" items={v.findings.gaps} testid="gaps" />
                <Findings title="For the council to judge" kind="info" items={v.findings.toJudge} testid="to-judge" />
                {v.findings.blocking.length === 0 && <p class="ok small">No blocking findings.</p>}
                {v.notes.length > 0 && <Findings title="Notes" kind="info" items={v.notes} />}
              </Section>
            ))}
          </div>
        )
      }
    </View>
  );
}

function Findings({ title, items, kind, testid }: { title: string; items: string[]; kind: string; testid?: string }) {
  if (items.length === 0) return null;
  return (
    <div class={`findings ${kind}`} data-testid={testid}>
      <h3>{title}</h3>
      <ul>
        {items.map((f) => (
          <li key={f}>{f}</li>
        ))}
      </ul>
    </div>
  );
}

function itemState(i: ChecklistItem): 'met' | 'waived' | 'failing' | 'open' {
  if (i.status === 'waived') return 'waived';
  if (i.status === 'met') return i.result?.ok === false ? 'failing' : 'met';
  if (i.result) return i.result.ok ? 'met' : 'failing';
  return 'open';
}

function describeCheck(c: ChecklistItem['check']): string {
  if (!c) return 'none (the council judges it)';
  const rest = Object.entries(c)
    .filter(([k]) => k !== 'kind')
    .map(([, v]) => (typeof v === 'string' ? v : JSON.stringify(v)))
    .join(' ');
  return rest ? `${c.kind}: ${rest}` : c.kind;
}

export function ChecklistPageView() {
  const loaded = useData<ChecklistPage>('/api/checklist');
  const { readOnly } = useStore();
  const [waiving, setWaiving] = useState<ChecklistItem | null>(null);
  const c = useControl();
  return (
    <View loaded={loaded}>
      {(d) => {
        if (!d.runId) return <NoRun />;
        if (!d.checklist || d.checklist.items.length === 0)
          return (
            <Empty testid="checklist-empty">
              No checklist yet: it is drawn from the spec's requirements when the run starts.
            </Empty>
          );
        const { counts, items, revealed } = d.checklist;
        const canWaive = d.status !== 'completed';
        return (
          <div class="stack" data-testid="page-checklist">
            <Section
              title="Checklist"
              testid="checklist"
              actions={
                <span class="muted small" data-testid="checklist-counts">
                  {counts.met} met · {counts.open} open · {counts.waived} waived · {counts.failing} failing
                </span>
              }
            >
              {!revealed && <p class="muted small">Held-out items stay hidden until the agent claims completion.</p>}
              <OutcomeNote outcome={c.outcome} />
              <ReadOnlyNote />
              <Table cols={['Item', 'Status', 'Check', '']}>
                {items.map((i) => {
                  const st = itemState(i);
                  return (
                    <tr key={i.id} data-testid={`item-${i.id}`} data-status={st} data-held-out={String(i.heldOut)}>
                      <td class="wrap">
                        <span class="mono muted">{i.id}</span> {i.text}
                        {i.heldOut && (
                          <>
                            {' '}
                            <Badge kind="held-out" testid="held-out">
                              held out
                            </Badge>
                          </>
                        )}
                        {i.note && <div class="muted small">{i.note}</div>}
                      </td>
                      <td>
                        <Badge kind={st}>{st}</Badge>
                      </td>
                      <td class="wrap small">
                        {describeCheck(i.check)}
                        {i.result && <div class={i.result.ok ? 'ok' : 'bad'}>{i.result.detail}</div>}
                      </td>
                      <td>
                        {canWaive && st !== 'met' && st !== 'waived' && (
                          <button
                            type="button"
                            class="small-btn"
                            data-testid={`waive-${i.id}`}
                            disabled={readOnly}
                            onClick={() => setWaiving(i)}
                          >
                            Waive
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </Table>
            </Section>
            <Section title="Waivers" testid="waivers">
              {d.waivers.length === 0 ? (
                <Empty testid="waivers-empty">No waivers: every item is to be done.</Empty>
              ) : (
                <ul class="list">
                  {d.waivers.map((w) => (
                    <li key={w.id} data-testid={`waiver-${w.id}`}>
                      <span class="mono">{w.id}</span> <Badge kind="waived">{w.kind}</Badge>{' '}
                      <span class="mono">
                        {[...(w.items ?? []), ...w.tasks, ...(w.phase ? [w.phase] : [])].join(', ')}
                      </span>
                      <div>“{w.reason}”</div>
                      <div class="muted small">
                        by {w.grantedBy.user ?? 'a person'} via {w.grantedBy.via} · <Time at={w.at} />
                      </div>
                    </li>
                  ))}
                </ul>
              )}
            </Section>
            {waiving && (
              <WaiveDialog
                item={waiving}
                onClose={() => setWaiving(null)}
                onWaive={async (reason) => {
                  const ok = await c.run(`/api/checklist/${encodeURIComponent(waiving.id)}/waive`, { reason }, (r) => {
                    const w = r.waiver as { id?: string } | undefined;
                    return `Waived ${waiving.id}${w?.id ? ` (${w.id})` : ''}: the receipt shows the reason.`;
                  });
                  if (ok) setWaiving(null);
                  return ok;
                }}
                error={c.outcome && !c.outcome.ok ? c.outcome.message : null}
              />
            )}
          </div>
        );
      }}
    </View>
  );
}

function WaiveDialog({
  item,
  onClose,
  onWaive,
  error,
}: {
  item: ChecklistItem;
  onClose: () => void;
  onWaive: (reason: string) => Promise<boolean>;
  error: string | null;
}) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const short = reason.trim().length < 10;
  return (
    <Dialog title={`Waive ${item.id}`} testid="waive-dialog" onClose={onClose}>
      <p>“{item.text}” need not be done. Say why: the reason is recorded and shown in the receipt.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          void onWaive(reason.trim()).finally(() => setBusy(false));
        }}
      >
        <label>
          Reason (at least 10 characters)
          <textarea
            data-testid="waive-reason"
            rows={3}
            maxLength={1000}
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
        </label>
        <ErrorNote message={error} testid="waive-error" />
        <div class="buttons end">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" data-testid="waive-confirm" disabled={short || busy}>
            Waive
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function CouncilPageView() {
  const loaded = useData<CouncilPage>('/api/council');
  const { readOnly } = useStore();
  const c = useControl();
  return (
    <View loaded={loaded}>
      {(d) => {
        if (!d.runId) return <NoRun />;
        return (
          <div class="stack" data-testid="page-council">
            <Section
              title="Review"
              testid="council-settings"
              actions={
                <button
                  type="button"
                  data-testid="council-force-review"
                  disabled={readOnly || c.busy}
                  onClick={() =>
                    void c.run('/api/control/force-review', {}, (r) => String(r.message ?? 'Review requested.'))
                  }
                >
                  Force review
                </button>
              }
            >
              <p class="muted small">
                {d.enabled
                  ? `${d.size} seats, ${d.threshold} approvals needed, and a devil's advocate after a unanimous approval`
                  : 'The council is disabled in the configuration.'}
              </p>
              <OutcomeNote outcome={c.outcome} />
              <ReadOnlyNote />
              {d.forcedReview && (
                <p class="warn" data-testid="forced-review">
                  Review forced by {d.forcedReview.by} <Time at={d.forcedReview.at} />: {d.forcedReview.reason}
                </p>
              )}
              {d.findings.length > 0 && (
                <Findings
                  title="Findings of refused completions"
                  kind="bad"
                  items={d.findings}
                  testid="council-findings"
                />
              )}
            </Section>
            {d.councils.length === 0 ? (
              <Empty testid="council-empty">
                No council has convened: the agent convenes one when it claims completion.
              </Empty>
            ) : (
              d.councils.map((k) => (
                <Section
                  key={k.id}
                  title={`Council ${k.id}`}
                  testid={`council-${k.id}`}
                  actions={
                    <Badge kind={k.state} testid="council-state">
                      {k.state}
                    </Badge>
                  }
                >
                  <p class="muted small">
                    Convened <Time at={k.convenedAt} /> · {k.reason} · {k.cast} of {k.size} votes · {k.threshold} to
                    approve
                  </p>
                  {k.hidden ? (
                    <p class="muted" data-testid="votes-hidden">
                      Votes are hidden until the tally ({k.cast} of {k.size} cast).
                    </p>
                  ) : (
                    <Table cols={['Seat', 'Role', 'Vote', 'Rationale', 'Evidence']}>
                      {k.votes.map((v) => {
                        const devil = v.seat === 0 || v.role === 'devils-advocate';
                        return (
                          <tr
                            key={v.seat}
                            class={devil ? 'devil' : ''}
                            data-testid={`vote-${v.seat}`}
                            data-devil={String(devil)}
                          >
                            <td>{v.seat}</td>
                            <td>
                              {devil ? (
                                <Badge kind="devil" testid="devils-advocate">
                                  devil's advocate
                                </Badge>
                              ) : (
                                v.role
                              )}
                            </td>
                            <td>
                              <Badge kind={v.vote}>{v.vote}</Badge>
                            </td>
                            <td class="wrap">{v.rationale}</td>
                            <td class="wrap small">
                              {v.evidence.map((e) => (
                                <div key={e} class="mono">
                                  {e}
                                </div>
                              ))}
                            </td>
                          </tr>
                        );
                      })}
                    </Table>
                  )}
                </Section>
              ))
            )}
          </div>
        );
      }}
    </View>
  );
}
