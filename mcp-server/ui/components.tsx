/** Small pieces the pages share: data loading, empty and error states, gauges, the timeline chart, dialogs. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, get, post } from './api.js';
import { useStore } from './store.js';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  reload(): void;
}

/** GET `path` now and again whenever the run changes (the store's tick); the last data stays while reloading. */
export function useData<T>(path: string | null): Loaded<T> {
  const { tick } = useStore();
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [own, setOwn] = useState(0);
  const seq = useRef(0);
  const lastPath = useRef(path);
  useEffect(() => {
    if (path === null) return;
    if (lastPath.current !== path) {
      lastPath.current = path;
      setData(undefined);
    }
    const n = ++seq.current;
    get<T>(path).then(
      (d) => {
        if (n !== seq.current) return;
        setData(d);
        setError(null);
      },
      (err: unknown) => {
        if (n !== seq.current) return;
        setError(err instanceof Error ? err.message : String(err));
      },
    );
  }, [path, tick, own]);
  const reload = useCallback(() => setOwn((x) => x + 1), []);
  return { data, error, reload };
}

export function Loading() {
  return (
    <p class="muted" data-testid="loading">
      Loading…
    </p>
  );
}

export function ErrorNote({ message, testid = 'error' }: { message: string | null; testid?: string }) {
  if (!message) return null;
  return (
    <p class="error" role="alert" data-testid={testid}>
      {message}
    </p>
  );
}

export function Empty({ children, testid = 'empty' }: { children: ComponentChildren; testid?: string }) {
  return (
    <div class="empty" data-testid={testid}>
      {children}
    </div>
  );
}

export function NoRun() {
  return (
    <Empty testid="empty-run">
      No run yet: start one with <code>loki run prd.md</code> or "Loki Mode" in your agent.
    </Empty>
  );
}

/** The view's frame: loading, error, or its content. */
export function View<T>({ loaded, children }: { loaded: Loaded<T>; children: (data: T) => ComponentChildren }) {
  if (loaded.data === undefined) return loaded.error ? <ErrorNote message={loaded.error} /> : <Loading />;
  return (
    <>
      <ErrorNote message={loaded.error} testid="reload-error" />
      {children(loaded.data)}
    </>
  );
}

export function Section({
  title,
  children,
  testid,
  actions,
}: {
  title: string;
  children: ComponentChildren;
  testid?: string;
  actions?: ComponentChildren;
}) {
  return (
    <section class="card" data-testid={testid}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** A table that scrolls sideways inside its card on a narrow screen; `cols` are the header cells ('' for none). */
export function Table({
  cols,
  children,
  testid,
  kind,
}: {
  cols: string[];
  children: ComponentChildren;
  testid?: string;
  kind?: string;
}) {
  return (
    <div class="table-wrap">
      <table class={kind ? `table ${kind}` : 'table'} data-testid={testid}>
        <thead>
          <tr>{cols.map((c, i) => (c ? <th key={i}>{c}</th> : <th key={i} />))}</tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

export function Badge({ kind, children, testid }: { kind: string; children: ComponentChildren; testid?: string }) {
  return (
    <span class={`badge b-${kind.replace(/[^a-z0-9-]/gi, '').toLowerCase()}`} data-testid={testid}>
      {children}
    </span>
  );
}

export function Time({ at }: { at: string | null | undefined }) {
  useStore(); // re-rendered with the store's clock
  if (!at) return <span class="muted">–</span>;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return <span>{at}</span>;
  return (
    <time dateTime={at} title={d.toLocaleString()}>
      {ago(d.getTime())}
    </time>
  );
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  const future = s < 0;
  const a = Math.abs(s);
  const text =
    a < 5
      ? 'just now'
      : a < 60
        ? `${a}s`
        : a < 3600
          ? `${Math.round(a / 60)}m`
          : a < 86400
            ? `${Math.round(a / 3600)}h`
            : `${Math.round(a / 86400)}d`;
  if (text === 'just now') return text;
  return future ? `in ${text}` : `${text} ago`;
}

export function fmtMs(ms: number | null): string {
  if (ms === null) return '–';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

export function fmtTokens(n: number): string {
  return n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)}M` : n >= 1000 ? `${Math.round(n / 1000)}k` : String(n);
}

/** A horizontal gauge drawn in SVG (no style attributes: the page's CSP allows none in markup). */
export function Gauge({
  label,
  pct,
  text,
  testid,
}: {
  label: string;
  pct: number | null;
  text: string;
  testid?: string;
}) {
  const v = pct === null ? 0 : Math.max(0, Math.min(100, pct));
  const level = pct === null ? 'none' : pct >= 90 ? 'crit' : pct >= 75 ? 'warn' : 'ok';
  return (
    <div class="gauge" data-testid={testid}>
      <div class="gauge-label">
        <span>{label}</span>
        <span class="gauge-text">{text}</span>
      </div>
      <svg
        class={`gauge-bar g-${level}`}
        viewBox="0 0 100 6"
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label}: ${text}`}
      >
        <rect class="gauge-track" x="0" y="0" width="100" height="6" rx="3" />
        {pct !== null && <rect class="gauge-fill" x="0" y="0" width={v} height="6" rx="3" />}
      </svg>
    </div>
  );
}

/** A line chart of the context size (and spend) over time, inline SVG. */
export function LineChart({
  samples,
  max,
}: {
  samples: { at: string; contextTokens: number; costUsd: number }[];
  max: number;
}) {
  const W = 600;
  const H = 140;
  const pad = { l: 44, r: 50, t: 10, b: 22 };
  if (samples.length === 0)
    return (
      <p class="muted" data-testid="timeline-empty">
        No samples yet: the timeline fills as the Claude Code hooks measure the context.
      </p>
    );
  const times = samples.map((s) => Date.parse(s.at));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const top = Math.max(max, ...samples.map((s) => s.contextTokens));
  const costTop = Math.max(0.01, ...samples.map((s) => s.costUsd));
  const x = (t: number) => pad.l + (t1 === t0 ? (W - pad.l - pad.r) / 2 : ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r));
  const y = (v: number, of: number) => pad.t + (1 - v / of) * (H - pad.t - pad.b);
  const ctx = samples.map((s, i) => `${x(times[i]!).toFixed(1)},${y(s.contextTokens, top).toFixed(1)}`).join(' ');
  const cost = samples.map((s, i) => `${x(times[i]!).toFixed(1)},${y(s.costUsd, costTop).toFixed(1)}`).join(' ');
  const fmtT = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="context size over time" data-testid="timeline">
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line class="grid" x1={pad.l} x2={W - pad.r} y1={y(top * f, top)} y2={y(top * f, top)} />
          <text class="axis" x={pad.l - 6} y={y(top * f, top) + 4} text-anchor="end">
            {fmtTokens(Math.round(top * f))}
          </text>
          <text class="axis cost" x={W - pad.r + 6} y={y(costTop * f, costTop) + 4}>
            ${(costTop * f).toFixed(2)}
          </text>
        </g>
      ))}
      <text class="axis" x={pad.l} y={H - 5}>
        {fmtT(t0)}
      </text>
      <text class="axis" x={W - pad.r} y={H - 5} text-anchor="end">
        {fmtT(t1)}
      </text>
      <polyline class="line-cost" points={cost} />
      <polyline class="line-ctx" points={ctx} />
      {samples.length === 1 && (
        <circle class="dot-ctx" cx={x(times[0]!)} cy={y(samples[0]!.contextTokens, top)} r="3" />
      )}
    </svg>
  );
}

/** A modal dialog (the native <dialog>, opened with showModal: focus kept inside, Escape closes it). */
export function Dialog({
  title,
  onClose,
  children,
  testid,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  testid?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={ref} class="dialog" data-testid={testid} onClose={onClose} aria-label={title}>
      <h2>{title}</h2>
      {children}
    </dialog>
  );
}

export interface Outcome {
  ok: boolean;
  message: string;
}

/** Run a control, keep its outcome (the server's message, or its error) for the page to show. */
export function useControl(): {
  busy: boolean;
  outcome: Outcome | null;
  run: (
    path: string,
    body: Record<string, unknown>,
    message: (r: Record<string, unknown>) => string,
  ) => Promise<boolean>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const run = useCallback(
    async (path: string, body: Record<string, unknown>, message: (r: Record<string, unknown>) => string) => {
      setBusy(true);
      try {
        const r = await post<Record<string, unknown>>(path, body);
        setOutcome({ ok: true, message: message(r) });
        return true;
      } catch (err) {
        setOutcome({ ok: false, message: err instanceof ApiError || err instanceof Error ? err.message : String(err) });
        return false;
      } finally {
        setBusy(false);
      }
    },
    [],
  );
  return { busy, outcome, run, clear: () => setOutcome(null) };
}

export function OutcomeNote({ outcome, testid = 'control-result' }: { outcome: Outcome | null; testid?: string }) {
  if (!outcome) return null;
  return (
    <p
      class={outcome.ok ? 'result ok' : 'result error'}
      role={outcome.ok ? 'status' : 'alert'}
      data-testid={testid}
      data-ok={String(outcome.ok)}
    >
      {outcome.message}
    </p>
  );
}

export function ReadOnlyNote() {
  const { readOnly } = useStore();
  if (!readOnly) return null;
  return (
    <p class="muted small" data-testid="read-only">
      This token is read-only: the controls need the operator token.
    </p>
  );
}
