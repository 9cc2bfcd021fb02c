/**
 * The dashboard's page: a token (from the address's fragment, or pasted), a live feed of the run's changes, and
 * one view per hash route. Preact only; every request carries the token as a bearer credential.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Overview } from './overview.js';
import { ChecklistPageView, CouncilPageView, TasksPage, VerificationPage } from './pages-run.js';
import { AuditPageView, CheckpointsPageView, MemoryPageView, ReceiptsPageView } from './pages-records.js';
import { setToken, takeTokenFromUrl, useStore } from './store.js';
import { startLive, stopLive } from './live.js';
import type { ComponentType } from 'preact';

const PAGES: { id: string; title: string; view: ComponentType<{ arg: string | null }> }[] = [
  { id: 'overview', title: 'Overview', view: () => <Overview /> },
  { id: 'tasks', title: 'Tasks', view: () => <TasksPage /> },
  { id: 'verification', title: 'Verification', view: () => <VerificationPage /> },
  { id: 'checklist', title: 'Checklist', view: () => <ChecklistPageView /> },
  { id: 'council', title: 'Council', view: () => <CouncilPageView /> },
  { id: 'memory', title: 'Memory', view: ({ arg }) => <MemoryPageView query={arg} /> },
  { id: 'checkpoints', title: 'Checkpoints', view: () => <CheckpointsPageView /> },
  { id: 'audit', title: 'Audit', view: () => <AuditPageView /> },
  { id: 'receipts', title: 'Receipts', view: ({ arg }) => <ReceiptsPageView selected={arg} /> },
];

function route(): { page: string; arg: string | null } {
  const m = /^#\/([a-z]+)(?:\/(.+))?$/.exec(location.hash);
  const page = m && PAGES.some((p) => p.id === m[1]) ? m[1]! : 'overview';
  return { page, arg: m?.[2] ? decodeURIComponent(m[2]) : null };
}

function useRoute() {
  const [r, setR] = useState(route);
  useEffect(() => {
    const on = () => setR(route());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return r;
}

function App() {
  const { token } = useStore();
  useEffect(() => {
    if (!token) return;
    startLive();
    return stopLive;
  }, [token]);
  return token ? <Shell /> : <TokenForm />;
}

function Shell() {
  const { page, arg } = useRoute();
  const current = PAGES.find((p) => p.id === page)!;
  useEffect(() => {
    document.title = `${current.title} · Loki Mode`;
  }, [current]);
  const View = current.view;
  return (
    <>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ◆
          </span>
          Loki Mode
        </div>
        <LiveIndicator />
        <button type="button" class="link small" data-testid="forget-token" onClick={() => setToken(null)}>
          Forget token
        </button>
      </header>
      <nav class="nav" aria-label="pages" data-testid="nav">
        {PAGES.map((p) => (
          <a
            key={p.id}
            href={`#/${p.id}`}
            class={p.id === page ? 'on' : ''}
            aria-current={p.id === page ? 'page' : undefined}
            data-testid={`nav-${p.id}`}
          >
            {p.title}
          </a>
        ))}
      </nav>
      <main class="main" data-testid="main" data-page={page}>
        <h1 class="page-title">{current.title}</h1>
        <View key={page} arg={arg} />
      </main>
    </>
  );
}

function LiveIndicator() {
  const { live } = useStore();
  const label = live === 'live' ? 'live' : live === 'off' ? 'offline' : live;
  return (
    <span class={`live l-${live}`} data-testid="live" data-state={live} role="status" aria-live="polite">
      <span class="live-dot" aria-hidden="true" />
      {label}
    </span>
  );
}

function TokenForm() {
  const { tokenProblem } = useStore();
  const [value, setValue] = useState('');
  return (
    <main class="token-page">
      <form
        class="card token-form"
        data-testid="token-form"
        onSubmit={(e) => {
          e.preventDefault();
          const t = value.trim().replace(/^.*#token=/, '');
          if (t) setToken(t);
        }}
      >
        <h1>Loki Mode dashboard</h1>
        <p>
          Open the address <code>loki dashboard</code> printed (it carries the token), or paste a token here: the
          operator token steers the run, the read-only token only watches.
        </p>
        {tokenProblem && (
          <p class="error" role="alert" data-testid="token-problem">
            {tokenProblem}
          </p>
        )}
        <label>
          Token
          <input
            data-testid="token-input"
            type="password"
            autoComplete="off"
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </label>
        <div class="buttons end">
          <button type="submit" class="primary" data-testid="token-submit" disabled={!value.trim()}>
            Open
          </button>
        </div>
      </form>
    </main>
  );
}

takeTokenFromUrl();
render(<App />, document.getElementById('app')!);
