/** The project's records: memory, checkpoints (with rollback), the audit log and the receipts. */
import { useEffect, useState } from 'preact/hooks';
import {
  Badge,
  Dialog,
  Empty,
  ErrorNote,
  Loading,
  OutcomeNote,
  ReadOnlyNote,
  Section,
  Time,
  View,
  useControl,
  useData,
  Table,
} from './components.js';
import { get } from './api.js';
import { useStore } from './store.js';
import type {
  AuditPage,
  AuditVerify,
  Checkpoint,
  CheckpointsPage,
  MemoryPage,
  ReceiptCheck,
  ReceiptPage,
  ReceiptsPage,
} from './types.js';

/** The memory search; the query is part of the address (#/memory/<words>), so a search can be linked. */
export function MemoryPageView({ query }: { query: string | null }) {
  const [text, setText] = useState(query ?? '');
  const q = (query ?? '').trim();
  // With no words the server answers the newest memories: the page's first view.
  const loaded = useData<MemoryPage>(`/api/memory?limit=20${q ? `&q=${encodeURIComponent(q)}` : ''}`);
  return (
    <div class="stack" data-testid="page-memory">
      <form
        class="search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const t = text.trim();
          location.hash = t ? `#/memory/${encodeURIComponent(t)}` : '#/memory';
        }}
      >
        <input
          type="search"
          data-testid="memory-query"
          placeholder="Search what the agent recorded…"
          aria-label="search memory"
          value={text}
          maxLength={500}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <button type="submit" class="primary" data-testid="memory-search">
          Search
        </button>
      </form>
      {
        <View loaded={loaded}>
          {(d) => (
            <Section
              title={q ? `Results for “${q}” (${d.matched})` : `Newest memories (${d.matched})`}
              testid={q ? 'memory-results' : 'memory-newest'}
            >
              {d.problems.length > 0 && <ErrorNote message={d.problems.join('; ')} testid="memory-problems" />}
              {d.results.length === 0 ? (
                q ? (
                  <Empty testid="memory-empty">No memory matches: nothing the agent recorded is about “{q}”.</Empty>
                ) : (
                  <Empty testid="memory-prompt">
                    No memories yet: the lessons, episodes and facts the agent records as it works show here, and the
                    search above finds them.
                  </Empty>
                )
              ) : (
                <ul class="list">
                  {d.results.map((m) => (
                    <li key={m.id} data-testid={`memory-${m.id}`}>
                      <strong>{m.title}</strong> <Badge kind={m.layer}>{m.layer}</Badge>
                      {m.outcome && (
                        <>
                          {' '}
                          <Badge kind={m.outcome}>{m.outcome}</Badge>
                        </>
                      )}
                      {m.flags.map((f) => (
                        <span key={f}>
                          {' '}
                          <Badge kind="warning">{f}</Badge>
                        </span>
                      ))}
                      <div class="muted small">
                        <span class="mono">{m.id}</span>
                        {m.provenance && (
                          <>
                            {' '}
                            · {m.provenance.source}
                            {m.provenance.run && <span class="mono"> · {m.provenance.run}</span>}
                            {m.provenance.task && <span class="mono"> · {m.provenance.task}</span>} ·{' '}
                            <Time at={m.provenance.at} />
                          </>
                        )}
                      </div>
                    </li>
                  ))}
                </ul>
              )}
            </Section>
          )}
        </View>
      }
    </div>
  );
}

export function CheckpointsPageView() {
  const loaded = useData<CheckpointsPage>('/api/checkpoints');
  const { readOnly } = useStore();
  const [target, setTarget] = useState<Checkpoint | null>(null);
  const c = useControl();
  return (
    <View loaded={loaded}>
      {(d) => (
        <div class="stack" data-testid="page-checkpoints">
          <Section title="Checkpoints" testid="checkpoints">
            <OutcomeNote outcome={c.outcome} />
            <ReadOnlyNote />
            {d.checkpoints.length === 0 ? (
              <Empty testid="checkpoints-empty">
                No checkpoints yet: one is taken when a run starts and at each phase.
              </Empty>
            ) : (
              <Table cols={['Id', 'Label', 'Kind', 'Phase', 'Scope', 'Taken', '']}>
                {d.checkpoints.map((cp) => (
                  <tr key={cp.id} data-testid={`checkpoint-${cp.id}`}>
                    <td class="mono">
                      {cp.id}
                      {cp.id === d.latest && (
                        <>
                          {' '}
                          <Badge kind="latest">latest</Badge>
                        </>
                      )}
                    </td>
                    <td class="wrap">
                      {cp.label ?? <span class="muted">–</span>}
                      {cp.note && <div class="muted small">{cp.note}</div>}
                    </td>
                    <td>
                      {cp.kind}
                      <div class="muted small">{cp.trigger}</div>
                    </td>
                    <td>{cp.phase ?? '–'}</td>
                    <td>{cp.scope}</td>
                    <td>
                      <Time at={cp.createdAt} />
                    </td>
                    <td>
                      <button
                        type="button"
                        class="small-btn danger"
                        data-testid={`rollback-${cp.id}`}
                        disabled={readOnly}
                        onClick={() => setTarget(cp)}
                      >
                        Rollback
                      </button>
                    </td>
                  </tr>
                ))}
              </Table>
            )}
            {d.damaged.length > 0 && (
              <div class="findings bad" data-testid="checkpoints-damaged">
                <h3>Damaged</h3>
                <ul>
                  {d.damaged.map((x) => (
                    <li key={x.id}>
                      <span class="mono">{x.id}</span>: {x.problem}
                    </li>
                  ))}
                </ul>
              </div>
            )}
          </Section>
          {target && (
            <RollbackDialog
              cp={target}
              onClose={() => setTarget(null)}
              error={c.outcome && !c.outcome.ok ? c.outcome.message : null}
              onConfirm={async (confirm, code) => {
                const ok = await c.run(
                  `/api/checkpoints/${encodeURIComponent(target.id)}/rollback`,
                  { confirm, code },
                  (r) => {
                    const rb = r.rollback as
                      { target?: string; preRollback?: string; codeRestored?: boolean } | undefined;
                    return `Rolled back to ${rb?.target ?? target.id}${rb?.codeRestored ? ' (state and code)' : ' (state only)'}. To undo it, roll back to ${rb?.preRollback ?? 'the checkpoint taken just before'}.`;
                  },
                );
                if (ok) setTarget(null);
              }}
            />
          )}
        </div>
      )}
    </View>
  );
}

function RollbackDialog({
  cp,
  onClose,
  onConfirm,
  error,
}: {
  cp: Checkpoint;
  onClose: () => void;
  onConfirm: (confirm: string, code: boolean) => Promise<void>;
  error: string | null;
}) {
  const [typed, setTyped] = useState('');
  const [code, setCode] = useState(false);
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title={`Roll back to ${cp.id}?`} testid="rollback-dialog" onClose={onClose}>
      <p>
        The run's state goes back to “{cp.label ?? cp.id}”. A checkpoint is taken first, so the rollback can be undone.
        Type <strong class="mono">{cp.id}</strong> to confirm.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          void onConfirm(typed, code).finally(() => setBusy(false));
        }}
      >
        <label>
          Checkpoint id
          <input
            data-testid="rollback-confirm-id"
            autoComplete="off"
            spellcheck={false}
            value={typed}
            onInput={(e) => setTyped(e.currentTarget.value)}
          />
        </label>
        {cp.scope === 'code+state' && (
          <label class="check">
            <input
              type="checkbox"
              data-testid="rollback-code"
              checked={code}
              onChange={(e) => setCode(e.currentTarget.checked)}
            />{' '}
            Restore the code too (files in the working tree)
          </label>
        )}
        <ErrorNote message={error} testid="rollback-error" />
        <div class="buttons end">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="danger" data-testid="rollback-confirm" disabled={typed !== cp.id || busy}>
            Roll back
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const PAGE = 50;

export function AuditPageView() {
  // The pages seen, newest first: undefined is the newest page; each older one starts before a sequence number.
  const [before, setBefore] = useState<number[]>([]);
  const cursor = before.at(-1);
  const loaded = useData<AuditPage>(`/api/audit?limit=${PAGE}${cursor !== undefined ? `&before=${cursor}` : ''}`);
  const [verify, setVerify] = useState<AuditVerify | null>(null);
  const [verifyError, setVerifyError] = useState<string | null>(null);
  const [verifying, setVerifying] = useState(false);
  const runVerify = async () => {
    setVerifying(true);
    setVerifyError(null);
    try {
      setVerify(await get<AuditVerify>('/api/audit/verify'));
    } catch (err) {
      setVerify(null);
      setVerifyError(err instanceof Error ? err.message : String(err));
    } finally {
      setVerifying(false);
    }
  };
  return (
    <div class="stack" data-testid="page-audit">
      <Section
        title="Audit chain"
        testid="audit-verify"
        actions={
          <button type="button" data-testid="audit-verify-button" disabled={verifying} onClick={() => void runVerify()}>
            {verifying ? 'Verifying…' : 'Verify chain'}
          </button>
        }
      >
        <p class="muted small">
          Every change to the run is one entry, each hashing the one before it: an edit breaks the chain.
        </p>
        {verify &&
          (verify.ok ? (
            <p class="result ok" data-testid="audit-verify-result" data-ok="true">
              OK: {verify.count} entries, head <span class="mono">{verify.head.slice(0, 16)}</span>
              {verify.anchors.map((a) => (
                <span key={a.label} class="block small">
                  {a.label}: {a.status} ({a.count})
                </span>
              ))}
            </p>
          ) : (
            <p class="result error" data-testid="audit-verify-result" data-ok="false">
              Broken: {typeof verify.firstBreak === 'string' ? verify.firstBreak : JSON.stringify(verify.firstBreak)}
              {verify.anchors
                .filter((a) => a.status !== 'ok')
                .map((a) => (
                  <span key={a.label} class="block small">
                    {a.label}: {a.status}
                  </span>
                ))}
            </p>
          ))}
        <ErrorNote message={verifyError} testid="audit-verify-error" />
      </Section>
      <View loaded={loaded}>
        {(d) => (
          <Section
            title={`Entries (${d.count})`}
            testid="audit"
            actions={
              <div class="buttons">
                <button
                  type="button"
                  data-testid="audit-newer"
                  disabled={before.length === 0}
                  onClick={() => setBefore(before.slice(0, -1))}
                >
                  Newer
                </button>
                <button
                  type="button"
                  data-testid="audit-older"
                  disabled={d.entries.length === 0 || d.entries.at(-1)!.seq === 0}
                  onClick={() => setBefore([...before, d.entries.at(-1)!.seq])}
                >
                  Older
                </button>
              </div>
            }
          >
            {d.entries.length === 0 ? (
              <Empty testid="audit-empty">The audit log is empty: nothing has happened in this project yet.</Empty>
            ) : (
              <Table cols={['Seq', 'When', 'Actor', 'Action', 'Target', 'Data']} kind="audit">
                {d.entries.map((e) => (
                  <tr key={e.seq} data-testid={`audit-${e.seq}`} data-action={e.action}>
                    <td class="mono">{e.seq}</td>
                    <td>
                      <Time at={e.at} />
                    </td>
                    <td class="wrap small">{e.actor}</td>
                    <td class="mono">{e.action}</td>
                    <td class="mono wrap small">{e.target ?? ''}</td>
                    <td class="data">{e.data === null || e.data === undefined ? '' : <Data value={e.data} />}</td>
                  </tr>
                ))}
              </Table>
            )}
          </Section>
        )}
      </View>
    </div>
  );
}

function Data({ value }: { value: unknown }) {
  const text = JSON.stringify(value);
  if (text.length <= 80) return <code class="small">{text}</code>;
  return (
    <details>
      <summary>
        <code class="small">{text.slice(0, 72)}…</code>
      </summary>
      <pre class="small">{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}

export function ReceiptsPageView({ selected }: { selected: string | null }) {
  const loaded = useData<ReceiptsPage>('/api/receipts');
  return (
    <View loaded={loaded}>
      {(d) =>
        d.receipts.length === 0 ? (
          <Empty testid="receipts-empty">No receipts yet: a run gets one when its completion is accepted.</Empty>
        ) : (
          <div class="stack" data-testid="page-receipts">
            <Section title="Receipts" testid="receipts">
              <ul class="list">
                {[...d.receipts].reverse().map((r) => (
                  <li key={r.runId} class={selected === r.runId ? 'selected' : ''}>
                    <a href={`#/receipts/${encodeURIComponent(r.runId)}`} data-testid={`receipt-${r.runId}`}>
                      <span class="mono">{r.runId}</span>
                    </a>{' '}
                    <Badge
                      kind={
                        r.headline.startsWith('VERIFIED WITH')
                          ? 'warning'
                          : r.headline.startsWith('VERIFIED')
                            ? 'approved'
                            : 'info'
                      }
                    >
                      {r.headline}
                    </Badge>
                  </li>
                ))}
              </ul>
            </Section>
            {selected && <Receipt runId={selected} />}
          </div>
        )
      }
    </View>
  );
}

function Receipt({ runId }: { runId: string }) {
  const loaded = useData<ReceiptPage>(`/api/receipts/${encodeURIComponent(runId)}`);
  // The check snapshots the tree with git: run when asked, not at every change of the run.
  const [check, setCheck] = useState<{ busy: boolean; result?: ReceiptCheck; error?: string }>({ busy: false });
  useEffect(() => setCheck({ busy: false }), [runId]);
  const runCheck = () => {
    setCheck({ busy: true });
    get<{ check: ReceiptCheck }>(`/api/receipts/${encodeURIComponent(runId)}/check`).then(
      (d) => setCheck({ busy: false, result: d.check }),
      (err: unknown) => setCheck({ busy: false, error: err instanceof Error ? err.message : String(err) }),
    );
  };
  if (!loaded.data) return loaded.error ? <ErrorNote message={loaded.error} /> : <Loading />;
  const r = loaded.data;
  const c = check.result;
  return (
    <Section
      title={`Receipt of ${r.runId}`}
      testid="receipt"
      actions={
        <button type="button" data-testid="receipt-check-run" disabled={check.busy} onClick={runCheck}>
          {check.busy ? 'Checking…' : 'Check receipt'}
        </button>
      }
    >
      {check.error && <ErrorNote message={check.error} />}
      {c && (
        <div class={c.ok ? 'result ok' : 'result error'} data-testid="receipt-check" data-ok={String(c.ok)}>
          {c.ok ? 'Check OK: the receipt matches the audit log and the code' : 'Check failed'}
          {c.headline && ` · ${c.headline}`}
          {c.manifestSha256 && (
            <span class="block small mono" title="keep this outside the machine's reach">
              manifest sha256 {c.manifestSha256}
            </span>
          )}
          {c.problems.map((p) => (
            <span key={p} class="block small">
              {p}
            </span>
          ))}
          {c.notes.map((p) => (
            <span key={p} class="block small muted">
              {p}
            </span>
          ))}
        </div>
      )}
      {r.receipt ? (
        <pre class="receipt" data-testid="receipt-text">
          {r.receipt}
        </pre>
      ) : (
        <Empty>RECEIPT.md is missing.</Empty>
      )}
    </Section>
  );
}
