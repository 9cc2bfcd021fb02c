/**
 * Agent sessions: one record per server process serving an agent, heartbeated by loki_status (stale after five
 * minutes without one) and marked stopped when the process shuts down.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import type { Store } from '../store/store.js';
import { SESSION_PREFIX, SESSION_RECORD, sessionFile, sessionLiveness, type SessionState } from './records.js';

const HEARTBEAT_EVERY_MS = 30_000;

/** Identity of the agent session served by this process. */
export interface SessionIdentity {
  id: string;
  client: { name: string; version: string } | null;
  provider: string;
}

export function newSessionIdentity(client: { name: string; version: string } | null): SessionIdentity {
  return { id: `s-${crypto.randomBytes(6).toString('hex')}`, client, provider: providerFromClient(client?.name) };
}

export function providerFromClient(name: string | undefined): string {
  const n = (name ?? '').toLowerCase();
  if (n.includes('claude')) return 'claude-code';
  if (n.includes('codex')) return 'codex';
  if (n.includes('cline')) return 'cline';
  return n === '' ? 'unknown' : n.replace(/[^a-z0-9._-]/g, '-').slice(0, 40);
}

export function writeSession(store: Store, runId: string, who: SessionIdentity, now: string): SessionState {
  const previous = store.records.read(sessionFile(who.id), SESSION_RECORD);
  const session: SessionState = {
    id: who.id,
    runId,
    pid: process.pid,
    host: os.hostname(),
    client: who.client,
    provider: who.provider,
    startedAt: previous?.startedAt ?? now,
    updatedAt: now,
    status: 'running',
    stoppedAt: null,
    stopReason: null,
  };
  store.records.write(sessionFile(who.id), SESSION_RECORD, session);
  return session;
}

/** Mark this process's session stopped (shutdown path: synchronous, best effort, never throws). */
export function stopSessionSync(store: Store | undefined, who: SessionIdentity, reason: string): boolean {
  if (!store) return false;
  try {
    const s = store.records.read(sessionFile(who.id), SESSION_RECORD);
    if (!s || s.status === 'stopped') return false;
    const now = new Date().toISOString();
    store.records.write(sessionFile(who.id), SESSION_RECORD, {
      ...s,
      status: 'stopped',
      updatedAt: now,
      stoppedAt: now,
      stopReason: reason,
    });
    return true;
  } catch {
    return false;
  }
}

export function listSessions(store: Store | undefined): SessionState[] {
  if (!store) return [];
  return store.records.list(SESSION_PREFIX, SESSION_RECORD).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
}

/** Refresh this session's record when it is missing, for another run, stopped, or older than the heartbeat period. */
export function heartbeat(store: Store, runId: string, who: SessionIdentity): 'running' {
  const existing = store.records.read(sessionFile(who.id), SESSION_RECORD);
  const now = Date.now();
  if (
    !existing ||
    existing.runId !== runId ||
    existing.status !== 'running' ||
    now - Date.parse(existing.updatedAt) > HEARTBEAT_EVERY_MS
  ) {
    writeSession(store, runId, who, new Date(now).toISOString());
  }
  return 'running';
}

/** Sessions that have stopped: a task one of them still holds may be resumed (claimed by id) or released. */
export function stoppedSessions(store: Store | undefined): Set<string> {
  return new Set(
    listSessions(store)
      .filter((s) => sessionLiveness(s) === 'stopped')
      .map((s) => s.id),
  );
}

/**
 * Mark stopped the sessions still recorded as running whose server process has gone (a host that ended, crashed
 * or was killed), audited as `session.end`: the tasks they hold are then resumed by the next session rather than
 * waiting out their lease. Used by the SessionEnd hook and by `loki run` after each host session.
 */
export async function endGoneSessions(store: Store): Promise<string[]> {
  const ended: string[] = [];
  for (const s of listSessions(store)) {
    if (s.status !== 'running' || s.host !== os.hostname() || processAlive(s.pid)) continue;
    const now = new Date().toISOString();
    store.records.write(sessionFile(s.id), SESSION_RECORD, {
      ...s,
      status: 'stopped',
      updatedAt: now,
      stoppedAt: now,
      stopReason: 'host session ended',
    });
    ended.push(s.id);
  }
  if (ended.length) await store.audit.append('session.end', undefined, { sessions: ended });
  return ended;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
