/**
 * The change feed: /api/events read with fetch (EventSource cannot send the Authorization header), its server-sent
 * event frames parsed here, reconnecting with a growing delay. A `change` adds the run's progress events to the
 * activity and reloads the views (at most once a second).
 */
import { addActivity, getState, scheduleReload, setState, setToken } from './store.js';
import type { Change } from './types.js';

/** No byte for this long (the server sends a keep-alive every 15 s): the stream is taken for dead. */
const SILENCE_MS = 45_000;
const MAX_DELAY_MS = 15_000;

export interface SseFrame {
  event: string;
  data: string;
}

/** Split a buffer into complete frames; the rest (an unfinished frame) is returned to wait for more bytes. */
export function parseFrames(buffer: string): { frames: SseFrame[]; rest: string } {
  const frames: SseFrame[] = [];
  const parts = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = parts.pop() ?? '';
  for (const part of parts) {
    let event = 'message';
    const data: string[] = [];
    for (const line of part.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0 || event !== 'message') frames.push({ event, data: data.join('\n') });
  }
  return { frames, rest };
}

let controller: AbortController | undefined;
let retry: ReturnType<typeof setTimeout> | undefined;
let delay = 1000;

export function startLive(): void {
  stopLive();
  void connect();
}

export function stopLive(): void {
  controller?.abort();
  controller = undefined;
  if (retry) clearTimeout(retry);
  retry = undefined;
  setState({ live: 'off' });
}

async function connect(): Promise<void> {
  const token = getState().token;
  if (!token) return;
  const ac = new AbortController();
  controller = ac;
  setState({ live: getState().live === 'off' ? 'connecting' : 'reconnecting' });
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const feed = () => {
    if (watchdog) clearTimeout(watchdog);
    watchdog = setTimeout(() => ac.abort(), SILENCE_MS);
  };
  try {
    const res = await fetch('/api/events', {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
      cache: 'no-store',
      signal: ac.signal,
    });
    if (res.status === 401) {
      let message = 'the token was refused';
      try {
        message = ((await res.json()) as { error?: string }).error ?? message;
      } catch {
        // not JSON
      }
      // Only the token this stream was opened with is dropped (a newer one may have been pasted meanwhile).
      if (getState().token === token) setToken(null, message);
      return;
    }
    if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
    feed();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed();
      const parsed = parseFrames(buffer + value);
      buffer = parsed.rest;
      for (const f of parsed.frames) handle(f);
    }
  } catch {
    // A network error or the watchdog's abort: reconnect below.
  } finally {
    if (watchdog) clearTimeout(watchdog);
  }
  // stopLive (or a newer connect) took over: this stream is done with.
  if (controller !== ac) return;
  if (!getState().token) return;
  setState({ live: 'reconnecting' });
  retry = setTimeout(() => void connect(), delay);
  delay = Math.min(delay * 2, MAX_DELAY_MS);
}

function handle(f: SseFrame): void {
  if (f.event === 'hello') {
    delay = 1000;
    setState({ live: 'live' });
    // Whatever changed while the stream was down.
    scheduleReload();
  } else if (f.event === 'change') {
    try {
      const change = JSON.parse(f.data) as Change;
      addActivity(change.events ?? []);
    } catch {
      // A frame that is not JSON still means the run changed.
    }
    scheduleReload();
  }
}
