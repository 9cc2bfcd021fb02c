/** Shared test fixtures: real temp projects, a real SDK client over the in-memory transport, disk snapshots. */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createServer, type LokiServer } from '../mcp-server/src/server.js';
import { Project } from '../mcp-server/src/project.js';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
export const DIST = path.join(REPO_ROOT, 'mcp-server', 'dist');

export interface TempProject {
  root: string;
  home: string;
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/** The held-out ids the server keeps under the project's LOKI_HOME until the reveal (none after it). */
export function keptHeldOut(p: TempProject): string[] {
  const dir = path.join(p.home, 'held-out');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { ids: string[] }).ids);
}

/** A fresh project directory (optionally a git repository with one commit) and its own LOKI_HOME. */
export function tempProject(opts: { git?: boolean; files?: Record<string, string> } = {}): TempProject {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-test-')));
  const root = path.join(base, 'project');
  const home = path.join(base, 'home');
  fs.mkdirSync(root);
  fs.mkdirSync(home);
  for (const [rel, text] of Object.entries(opts.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  if (opts.git) {
    git(root, 'init', '-q', '-b', 'main');
    git(root, 'add', '-A');
    git(root, 'commit', '-q', '--allow-empty', '-m', 'initial');
  }
  const env: NodeJS.ProcessEnv = { ...cleanEnv(), LOKI_HOME: home };
  return { root, home, env, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

/** The process environment without any LOKI_* or project variables leaking in from the developer's shell. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('LOKI_') && k !== 'CLAUDE_PROJECT_DIR') env[k] = v;
  return env;
}

export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export interface Connected {
  client: Client;
  loki: LokiServer;
  project: Project;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

/** A real SDK Client connected to createServer() over the linked in-memory transport. */
export async function connect(
  p: TempProject,
  extraEnv: NodeJS.ProcessEnv = {},
  clientName = 'test-client',
): Promise<Connected> {
  const project = new Project({ root: p.root, env: { ...p.env, ...extraEnv }, actor: 'test' });
  const loki = createServer(project);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: clientName, version: '1.0.0' });
  await Promise.all([loki.server.connect(serverTransport), client.connect(clientTransport)]);
  return {
    client,
    loki,
    project,
    call: async (name, args = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    close: async () => {
      await client.close();
      loki.shutdown('test finished');
    },
  };
}

export function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === 'text' ? first.text : '';
}

export function structured<T = Record<string, unknown>>(result: CallToolResult): T {
  if (result.isError) throw new Error(`tool failed: ${text(result)}`);
  return result.structuredContent as T;
}

/** Every regular file under `dir` (absolute paths, links not followed); none when it does not exist. */
export function allFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) out.push(abs);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

/**
 * Every file under a directory with its bytes, for "nothing changed" assertions. The database is compared by its
 * contents (every row of every table, read through a new connection), not its bytes: SQLite's -wal and -shm
 * files change when a connection merely reads.
 */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const abs = path.join(d, e.name);
      const rel = path.relative(dir, abs);
      if (e.isDirectory()) {
        out.set(`${rel}/`, '');
        walk(abs);
      } else if (e.name === 'loki.db') {
        out.set(rel, dbDump(abs));
      } else if (e.name !== 'loki.db-wal' && e.name !== 'loki.db-shm') {
        out.set(rel, fs.readFileSync(abs).toString('base64'));
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * A new connection to a project's database (close it when done), as the sqlite3 shell would open it: not in
 * defensive mode (Node 24's default), so a test can tamper with anything an agent with a shell could.
 */
export function openDb(root: string, readOnly = true): DatabaseSync {
  return new DatabaseSync(path.join(root, '.loki', 'loki.db'), { readOnly, defensive: false } as { readOnly: boolean });
}

/** Rows of a query on a project's database, through a new read-only connection. */
export function dbRows<T = Record<string, unknown>>(root: string, sql: string, ...params: SQLInputValue[]): T[] {
  if (!fs.existsSync(path.join(root, '.loki', 'loki.db'))) return [];
  const db = openDb(root);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Every table's rows and the schema version, as text: equal dumps mean the stored state is the same. */
export function dbDump(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const parts = [`user_version ${JSON.stringify(db.prepare('PRAGMA user_version').get())}`];
    const tables = db
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all() as { name: string }[];
    for (const { name } of tables)
      parts.push(`${name} ${JSON.stringify(db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all())}`);
    return parts.join('\n');
  } catch {
    // A virtual table without rowid, or a damaged file: fall back to its bytes.
    return fs.readFileSync(file).toString('base64');
  } finally {
    db.close();
  }
}

export function readJson<T = Record<string, unknown>>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** The audit log's entries, oldest first, as stored (data parsed). */
export function auditLines(root: string): Record<string, unknown>[] {
  return dbRows<Record<string, unknown>>(root, 'SELECT * FROM audit ORDER BY seq').map((r) => {
    const e: Record<string, unknown> = {
      seq: r.seq,
      ts: r.ts,
      actor: r.actor,
      action: r.action,
      prev: r.prev,
      hash: r.hash,
    };
    if (r.target !== null) e.target = r.target;
    if (r.data !== null) e.data = JSON.parse(r.data as string) as unknown;
    return e;
  });
}

/** A document (the run, a session, the checklist, ...) as stored, or undefined. */
export function docOnDisk<T = Record<string, unknown>>(root: string, key: string): T | undefined {
  const row = dbRows<{ body: string }>(root, 'SELECT body FROM docs WHERE key = ?', key)[0];
  return row ? (JSON.parse(row.body) as T) : undefined;
}

/** A task record as stored, or undefined. */
export function taskOnDisk<T = Record<string, unknown>>(root: string, id: string): T | undefined {
  const row = dbRows<{ body: string }>(root, 'SELECT body FROM tasks WHERE id = ?', id)[0];
  return row ? (JSON.parse(row.body) as T) : undefined;
}

/**
 * A listing of a tree that never follows links: kind, name, size, content hash, mtime, link count, link target.
 * Equal listings before and after an attack mean nothing was created, changed or followed.
 */
export function treeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(abs);
      if (st.isSymbolicLink()) out.push(`L ${r} -> ${fs.readlinkSync(abs)}`);
      else if (st.isDirectory()) {
        out.push(`D ${r}`);
        walk(abs, r);
      } else if (st.isFile()) {
        const hash = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16);
        out.push(`F ${r} ${st.size} ${hash} ${st.mtimeMs} n${st.nlink}`);
      } else out.push(`S ${r}`);
    }
  };
  walk(root, '');
  return out;
}

/** The run's phase, from a peek at the briefing (counts no turn). */
export async function phaseOf(c: Connected): Promise<string | undefined> {
  const r = await c.client.callTool({ name: 'loki_status', arguments: { peek: true } });
  return (r.structuredContent as { run: { phase: string } | null } | undefined)?.run?.phase;
}

/**
 * Walk forward to `phase` with loki_phase_advance, unless the server has passed there itself (a phase with nothing
 * open and its exit criteria met passes without a call).
 */
export async function reach(c: Connected, phase: string): Promise<{ ok: boolean; reasons: string[] }> {
  if ((await phaseOf(c)) === phase) return { ok: true, reasons: [] };
  return structured<{ ok: boolean; reasons: string[] }>(await c.call('loki_phase_advance'));
}
