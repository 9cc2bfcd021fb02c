/**
 * The built server, spawned over stdio the way hosts run it: initialize, tools/list, every tool, and a clean
 * shutdown (session marked stopped, the database free) on stdin close and on signals.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ALL_TOOLS } from '../mcp-server/src/tools/index.js';
import { DIST, dbRows, docOnDisk, openDb, tempProject, type TempProject } from './helpers.js';

const SERVER = path.join(DIST, 'loki-mcp.js');

let p: TempProject;
afterEach(() => p?.cleanup());

async function spawnClient(proj: TempProject, args: string[] = [], cwd = proj.root) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [SERVER, ...args],
    cwd,
    env: proj.env as Record<string, string>,
    stderr: 'pipe',
  });
  const client = new Client({ name: 'smoke', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

function sessionsOf(root: string) {
  return dbRows<{ body: string }>(root, "SELECT body FROM docs WHERE kind = 'session'").map(
    (r) => JSON.parse(r.body) as { status: string; stopReason: string | null; pid: number },
  );
}

/** Whether another process could take the database's write lock right now (nothing left holding it). */
function writable(root: string): boolean {
  const db = openDb(root, false);
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

describe('stdio smoke', () => {
  it('answers initialize, tools/list and every tool', async () => {
    p = tempProject({ git: true, files: { 'spec.md': '# Demo\n- one\n' } });
    const { client } = await spawnClient(p);
    expect(client.getServerVersion()).toMatchObject({ name: 'loki-mode' });
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(ALL_TOOLS.map((t) => t.name).sort());
    const tokens: Record<string, string> = {};
    const claim = async (id: string) => {
      const r = (await client.callTool({ name: 'loki_task_claim', arguments: { taskId: id } })) as CallToolResult;
      return (r.structuredContent as { token: string }).token;
    };
    // Arguments per tool, in the listed order; later calls use what earlier ones produced.
    const calls: Record<string, () => Promise<Record<string, unknown>> | Record<string, unknown>> = {
      loki_start: () => ({ spec: 'spec.md' }),
      loki_status: () => ({}),
      loki_phase_advance: () => ({}),
      loki_task_add: () => ({
        tasks: [
          { id: 'smoke-a', title: 'first' },
          { id: 'smoke-b', title: 'second', dependencies: ['smoke-a'] },
        ],
      }),
      loki_task_list: () => ({ status: ['pending'] }),
      loki_task_claim: () => ({ taskId: 'smoke-a' }),
      loki_task_complete: () => ({ id: 'smoke-a', token: tokens.claimed, summary: 'done' }),
      loki_task_fail: async () => ({ id: 'smoke-b', token: await claim('smoke-b'), error: 'smoke failure' }),
      loki_task_update: () => ({ id: 'smoke-b', priority: 'high' }),
      loki_verify: () => {
        // A change to verify (an empty diff would block the council).
        fs.writeFileSync(path.join(p!.root, 'smoke.txt'), 'changed by the smoke test\n');
        return {};
      },
      loki_checklist_get: () => ({}),
      loki_checklist_set: () => ({ items: [{ text: 'smoke item', waive: 'only a smoke test here' }] }),
      loki_council_convene: () => ({}),
      loki_council_vote: () => ({
        council: tokens.council,
        seat: 1,
        vote: 'approve',
        rationale: 'smoke vote, facts read',
        evidence: [tokens.verification],
      }),
      loki_complete: () => ({}),
      loki_memory_record: () => ({
        layer: 'episode',
        title: 'smoke episode',
        outcome: 'success',
        lessons: ['it works'],
      }),
      loki_memory_search: () => ({ query: 'smoke episode' }),
      loki_memory_get: () => ({ ids: ['ep-none-00000000'] }),
      loki_memory_consolidate: () => ({}),
      loki_learn: () => ({ category: 'smoke', title: 'Smoke solution' }),
      loki_checkpoint_create: () => ({ label: 'smoke' }),
      loki_checkpoint_list: () => ({}),
      loki_rollback: () => ({ target: 'latest', code: false }),
      loki_skill_load: () => ({ name: 'testing' }),
    };
    for (const t of tools) {
      expect(calls[t.name], `smoke arguments for ${t.name}`).toBeDefined();
      const r = (await client.callTool({ name: t.name, arguments: await calls[t.name]!() })) as CallToolResult;
      if (t.name === 'loki_task_claim') tokens.claimed = (r.structuredContent as { token: string }).token;
      if (t.name === 'loki_council_convene')
        Object.assign(tokens, r.structuredContent as { council: string; verification: string });
      expect(r.isError, `${t.name}: ${JSON.stringify(r.content)}`).toBeFalsy();
      expect(r.structuredContent).toBeTypeOf('object');
      expect(r.content[0]).toMatchObject({ type: 'text' });
    }
    // The bundle finds the skill pack relative to itself (mcp-server/dist -> the package root).
    const skill = (await client.callTool({ name: 'loki_skill_load', arguments: {} })) as CallToolResult;
    expect(skill.structuredContent).toMatchObject({ name: '00-index' });
    expect(
      (await client.getPrompt({ name: 'loki_start', arguments: { spec: 'spec.md' } })).messages[0]!.content,
    ).toMatchObject({ text: expect.stringContaining('loki_status') });
    await client.close();
  });

  it('marks its session stopped and leaves no lock when stdin closes', async () => {
    p = tempProject({ files: { 'spec.md': '# Demo\n' } });
    const { client, transport } = await spawnClient(p);
    await client.callTool({ name: 'loki_start', arguments: { spec: 'spec.md' } });
    const pid = transport.pid!;
    await client.close();
    await waitForExit(pid);
    const [s] = sessionsOf(p.root);
    expect(s).toMatchObject({ status: 'stopped', stopReason: 'client disconnected' });
    expect(writable(p.root)).toBe(true);
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('shuts down cleanly on %s', async (signal) => {
    p = tempProject({ files: { 'spec.md': '# Demo\n' } });
    const { client, transport } = await spawnClient(p);
    await client.callTool({ name: 'loki_start', arguments: { spec: 'spec.md' } });
    process.kill(transport.pid!, signal);
    await waitForExit(transport.pid!);
    expect(sessionsOf(p.root)[0]).toMatchObject({ status: 'stopped', stopReason: `received ${signal}` });
    expect(writable(p.root)).toBe(true);
  });

  it('uses --project-dir over the working directory', async () => {
    p = tempProject({ files: { 'spec.md': '# Demo\n' } });
    const { client } = await spawnClient(p, ['--project-dir', p.root], path.dirname(p.root));
    const r = (await client.callTool({ name: 'loki_start', arguments: { spec: 'spec.md' } })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect(docOnDisk(p.root, 'run')).toBeDefined();
    await client.close();
  });

  it('refuses to serve / and says how to set the project', async () => {
    p = tempProject();
    const child = spawn(process.execPath, [SERVER], { cwd: '/', env: p.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/refused/);
    expect(stderr).toMatch(/--project-dir|LOKI_PROJECT_DIR/);
    expect(stdout).toBe('');
  });

  it('prints help and version on stderr, never on stdout', async () => {
    p = tempProject();
    for (const flag of ['--help', '--version']) {
      const child = spawn(process.execPath, [SERVER, flag], { env: p.env });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      expect(await new Promise((r) => child.on('exit', r))).toBe(0);
      expect(out).toBe('');
      expect(err.length).toBeGreaterThan(3);
    }
  });
});

async function waitForExit(pid: number, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`process ${pid} did not exit`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
