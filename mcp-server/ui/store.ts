/**
 * The page's shared state: the token, the live stream's state, the activity it brought, and a reload counter that
 * every view reads its data again on. A tiny publish/subscribe store; components read it through useStore.
 */
import { useEffect, useState } from 'preact/hooks';
import type { ProgressEvent } from './types.js';

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'off';

export interface Activity {
  /** A number for keys: events carry no id of their own. */
  n: number;
  at: number;
  event: ProgressEvent;
}

export interface State {
  token: string | null;
  /** Why the token was dropped (the server refused it), shown on the token form. */
  tokenProblem: string | null;
  /** Learned from a 403 on a control (or the status's scope): the controls are disabled with a note. */
  readOnly: boolean;
  live: LiveState;
  /** Bumped when the run changed (at most once a second): views reload their data. */
  tick: number;
  activity: Activity[];
  /** Bumped every 30 s, so that "2m ago" keeps telling the truth on a quiet run. */
  clock: number;
}

const TOKEN_KEY = 'loki.dashboard.token';

let state: State = {
  token: readStoredToken(),
  tokenProblem: null,
  readOnly: false,
  live: 'off',
  tick: 0,
  activity: [],
  clock: 0,
};
setInterval(() => setState({ clock: state.clock + 1 }), 30_000);
const listeners = new Set<() => void>();

function readStoredToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function getState(): State {
  return state;
}

export function setState(patch: Partial<State>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

export function useStore(): State {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return state;
}

/**
 * The token from the address's fragment (`#token=...`, as `loki dashboard` prints it): kept in sessionStorage for
 * this tab, and the fragment removed so that it is not left in the address bar or the history.
 */
export function takeTokenFromUrl(): void {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  setToken(decodeURIComponent(m[1]!));
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}

export function setToken(token: string | null, problem: string | null = null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage refused (a private window's quota): the token lives for this page only.
  }
  setState({ token, tokenProblem: problem, readOnly: false });
}

let lastReload = 0;
let reloadTimer: ReturnType<typeof setTimeout> | undefined;

/** Ask every view to reload, at most once a second however many changes arrive. */
export function scheduleReload(): void {
  if (reloadTimer) return;
  const wait = Math.max(0, lastReload + 1000 - Date.now());
  reloadTimer = setTimeout(() => {
    reloadTimer = undefined;
    lastReload = Date.now();
    setState({ tick: state.tick + 1 });
  }, wait);
}

let activityN = 0;
const MAX_ACTIVITY = 100;

export function addActivity(events: ProgressEvent[]): void {
  if (events.length === 0) return;
  const at = Date.now();
  const added = events.map((event) => ({ n: ++activityN, at, event }));
  setState({ activity: [...added.reverse(), ...state.activity].slice(0, MAX_ACTIVITY) });
}
