/**
 * Lost updates and crashes through the real server: 8 spawned servers x 500 turns, 100 parallel calls in one
 * process, and servers SIGKILLed at named points inside a write. Every acknowledged turn must be counted once,
 * the database must stay intact and the next writer must get through at once.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DIST, auditLines, connect, dbRows, docOnDisk, tempProject, type TempProject } from './helpers.js';

const SERVER = path.join(DIST, 'loki-mcp.js');
const CLI = path.join(DIST, 'loki.js');

let p: TempProject;
afterEach(() => p?.cleanup());

async function stdioClient(proj: TempProject, env: NodeJS.ProcessEnv = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [SERVER],
    cwd: proj.root,
    env: { ...proj.env, ...env } as Record<string, string>,
    stderr: 'ignore',
  });
  const client = new Client({ name: 'load', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

function runIteration(root: string): number {
  return docOnDisk<{ iteration: number }>(root, 'run')!.iteration;
}

/** The database passes SQLite's own integrity check and every document parses. */
function assertIntact(root: string): void {
  expect(dbRows<{ integrity_check: string }>(root, 'PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
  for (const d of dbRows<{ key: string; body: string }>(root, 'SELECT key, body FROM docs'))
    expect(() => JSON.parse(d.body), d.key).not.toThrow();
}

describe('lost updates', () => {
  it('8 server processes x 500 turns each count exactly 4,000 turns', async () => {
    p = tempProject({ files: { 'spec.md': '# Load\n' } });
    p.env.LOKI_MAX_ITERATIONS = '100000';
    const first = await stdioClient(p);
    await first.client.callTool({ name: 'loki_start', arguments: { spec: 'spec.md' } });
    await first.client.close();
    const WORKERS = 8;
    const TURNS = 500;
    const clients = await Promise.all(Array.from({ length: WORKERS }, () => stdioClient(p)));
    await Promise.all(
      clients.map(async ({ client }) => {
        for (let i = 0; i < TURNS; i++) {
          const r = (await client.callTool({ name: 'loki_status', arguments: {} })) as CallToolResult;
          if (r.isError) throw new Error(JSON.stringify(r.content));
        }
      }),
    );
    await Promise.all(clients.map(({ client }) => client.close()));
    expect(runIteration(p.root)).toBe(WORKERS * TURNS);
    const turns = auditLines(p.root).filter((e) => e.action === 'run.turn');
    expect(turns).toHaveLength(WORKERS * TURNS);
    expect(new Set(turns.map((e) => (e.data as { iteration: number }).iteration)).size).toBe(WORKERS * TURNS);
    const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify'], { cwd: p.root, env: p.env, encoding: 'utf8' });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  }, 120_000);

  it('100 parallel in-flight calls in one process count exactly 100 turns', async () => {
    p = tempProject();
    const c = await connect(p);
    await c.call('loki_start', { specText: '# Parallel\n' });
    const results = await Promise.all(Array.from({ length: 100 }, () => c.call('loki_status')));
    expect(results.filter((r) => r.isError)).toEqual([]);
    expect(runIteration(p.root)).toBe(100);
    const seen = results
      .map((r) => (r.structuredContent as { run: { iteration: number } }).run.iteration)
      .sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await c.close();
  });
});

describe('crash at any point', () => {
  // Inside a transaction holding the write lock, just before its commit, just after it, and between the commit
  // and the external audit anchor's update.
  const POINTS = ['tx-begun', 'tx-before-commit', 'tx-after-commit', 'audit-before-anchor'];

  it.each(POINTS.flatMap((point) => [1, 2, 3].map((n) => [`${point}@${n}`] as const)))(
    'a server killed with SIGKILL at %s loses no acknowledged turn and blocks nobody',
    async (fault) => {
      p = tempProject({ files: { 'spec.md': '# Crash\n' } });
      const setup = await stdioClient(p);
      await setup.client.callTool({ name: 'loki_start', arguments: { spec: 'spec.md' } });
      await setup.client.close();

      const victim = await stdioClient(p, { LOKI_FAULT: fault });
      let acknowledged = 0;
      try {
        for (let i = 0; i < 10; i++) {
          const r = (await victim.client.callTool({ name: 'loki_status', arguments: {} })) as CallToolResult;
          if (!r.isError) acknowledged++;
        }
      } catch {
        /* the server died mid-call, as intended */
      }
      await victim.client.close().catch(() => undefined);

      assertIntact(p.root);
      const afterCrash = runIteration(p.root);
      expect(afterCrash).toBeGreaterThanOrEqual(acknowledged);
      expect(afterCrash).toBeLessThanOrEqual(acknowledged + 1);

      // A new server gets through (the dead process's write lock went with it) at once, and the count continues.
      const started = Date.now();
      const next = await stdioClient(p);
      const r = (await next.client.callTool({ name: 'loki_status', arguments: {} })) as CallToolResult;
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(runIteration(p.root)).toBe(afterCrash + 1);
      await next.client.close();

      const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify'], {
        cwd: p.root,
        env: p.env,
        encoding: 'utf8',
      });
      expect(verify.status, verify.stdout).toBe(0);
    },
    30_000,
  );

  it('a CLI writer killed while holding the write lock does not block the next one', async () => {
    p = tempProject();
    const child = spawn(process.execPath, [CLI, 'pause'], { cwd: p.root, env: { ...p.env, LOKI_FAULT: 'tx-begun' } });
    const exit = await new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    expect(exit).toBe('SIGKILL');
    const started = Date.now();
    const again = spawnSync(process.execPath, [CLI, 'pause'], { cwd: p.root, env: p.env, encoding: 'utf8' });
    expect(again.status, again.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(fs.existsSync(path.join(p.root, '.loki/PAUSE'))).toBe(true);
  });
});
