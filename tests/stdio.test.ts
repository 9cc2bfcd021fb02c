/**
 * The stdio transport of the built server, spawned as hosts run it: a line it cannot take (over the size limit,
 * not JSON, not JSON-RPC) is answered with a JSON-RPC error and the server goes on serving; stdin closing or
 * stdout failing ends the process, with the reason on stderr. The id scanner that lets an over-long request be
 * answered under its own id is checked on its own at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES, TopLevelIdScanner } from '../mcp-server/src/stdio.js';
import { DIST, tempProject, type TempProject } from './helpers.js';

const SERVER = path.join(DIST, 'loki-mcp.js');

let p: TempProject | undefined;
let child: ChildProcessWithoutNullStreams | undefined;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  p?.cleanup();
  p = undefined;
});

/** The server as a raw child: what it writes on stdout (one JSON message a line) and stderr, and how it ends. */
function spawnRaw() {
  p = tempProject();
  child = spawn(process.execPath, [SERVER], { cwd: p.root, env: p.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const c = child;
  const messages: Record<string, unknown>[] = [];
  let stderr = '';
  let partial = '';
  c.stdout.on('data', (d: Buffer) => {
    partial += d.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l) messages.push(JSON.parse(l) as Record<string, unknown>);
  });
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  c.stdin.on('error', () => {
    /* the server may be gone before the test stops writing */
  });
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
    let from = 0;
    c.stdin.on('close', () => (from ||= Date.now()));
    c.on('exit', (code) => resolve({ code, ms: Date.now() - (from || Date.now()) }));
  });
  const send = (obj: unknown) => c.stdin.write(`${JSON.stringify(obj)}\n`);
  const waitFor = async (pred: (m: Record<string, unknown>) => boolean, ms = 10_000) => {
    const start = Date.now();
    for (;;) {
      const m = messages.find(pred);
      if (m) return m;
      if (Date.now() - start > ms) throw new Error(`no such message; got ${JSON.stringify(messages).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  send({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { child: c, messages, stderr: () => stderr, exited, send, waitFor };
}

describe('a line the server cannot take is answered, and it goes on serving', () => {
  it('fails an over-long tools/call at once, under its own id, then answers the next call', async () => {
    p = tempProject();
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [SERVER],
      cwd: p.root,
      env: p.env as Record<string, string>,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(transport);
    const started = Date.now();
    // The SDK client writes the id after the params: the server finds it at the end of what it skipped.
    const huge = client.callTool({ name: 'loki_start', arguments: { specText: 'x'.repeat(MAX_LINE_BYTES + 1024) } });
    await expect(huge).rejects.toMatchObject({
      code: -32600,
      message: expect.stringMatching(/over this server's limit/),
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(stderr).toMatch(/refused a JSON-RPC line of \d+ bytes, over the limit of 10485760/);
    // Still serving: the next request is answered.
    expect(await client.ping()).toEqual({});
    expect((await client.listTools()).tools.length).toBeGreaterThan(5);
    await client.close();
  });

  it('answers an over-long line without a request id under id null, then answers the next request', async () => {
    const s = spawnRaw();
    await s.waitFor((m) => m.id === 0);
    // Sent in pieces, as a pipe delivers it: never a whole line in the server's memory.
    const piece = 'y'.repeat(1024 * 1024);
    for (let i = 0; i < 11; i++) s.child.stdin.write(piece);
    s.child.stdin.write('\n');
    const refused = await s.waitFor((m) => m.id === null);
    expect(refused).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
    s.send({ jsonrpc: '2.0', id: 7, method: 'ping' });
    expect(await s.waitFor((m) => m.id === 7)).toMatchObject({ result: {} });
    expect(s.stderr()).toMatch(/refused a JSON-RPC line of 11534336 bytes.*id null/);
    expect(s.child.exitCode).toBeNull();
  });

  it('answers no over-long notification (a "method" and no "id"), not even with an error, and goes on serving', async () => {
    const s = spawnRaw();
    await s.waitFor((m) => m.id === 0);
    s.child.stdin.write('{"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "');
    const piece = 'z'.repeat(1024 * 1024);
    for (let i = 0; i < 11; i++) s.child.stdin.write(piece);
    s.child.stdin.write('"}}\n');
    s.send({ jsonrpc: '2.0', id: 8, method: 'ping' });
    expect(await s.waitFor((m) => m.id === 8)).toMatchObject({ result: {} });
    expect(s.messages.filter((m) => m.id === null)).toEqual([]);
    expect(s.stderr()).toMatch(/dropped a JSON-RPC notification of \d+ bytes/);
    expect(s.child.exitCode).toBeNull();
  });

  it('answers a line that is not JSON with a parse error and JSON that is not JSON-RPC with Invalid Request', async () => {
    const s = spawnRaw();
    await s.waitFor((m) => m.id === 0);
    s.child.stdin.write('{"jsonrpc": "2.0", "id": 3, "method": \n');
    expect(await s.waitFor((m) => (m.error as { code?: number } | undefined)?.code === -32700)).toMatchObject({
      id: null,
      error: { message: expect.stringMatching(/^Parse error/) },
    });
    s.send({ id: 4, method: 'ping' });
    expect(await s.waitFor((m) => m.id === 4)).toMatchObject({ error: { code: -32600 } });
    s.send({ jsonrpc: '2.0', id: 5, method: 'ping' });
    expect(await s.waitFor((m) => m.id === 5)).toMatchObject({ result: {} });
    expect(s.stderr()).toMatch(/not JSON/);
  });
});

describe('the server exits when its transport closes or fails', () => {
  it('exits 0 promptly when stdin closes', async () => {
    const s = spawnRaw();
    await s.waitFor((m) => m.id === 0);
    s.child.stdin.end();
    const { code, ms } = await s.exited;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(3000);
  });

  it('logs the reason and exits 1 when stdout fails (the client stopped reading)', async () => {
    const s = spawnRaw();
    await s.waitFor((m) => m.id === 0);
    s.child.stdout.destroy();
    // Its answers now have nowhere to go: the write fails with EPIPE.
    for (let i = 0; i < 20 && s.child.exitCode === null; i++) {
      s.send({ jsonrpc: '2.0', id: 100 + i, method: 'ping' });
      await new Promise((r) => setTimeout(r, 50));
    }
    const { code } = await s.exited;
    expect(code).toBe(1);
    expect(s.stderr()).toMatch(/exiting: stdout failed: .*EPIPE/);
  });
});

describe('TopLevelIdScanner', () => {
  const scan = (...pieces: string[]) => {
    const s = new TopLevelIdScanner();
    for (const piece of pieces) s.feed(Buffer.from(piece));
    return s.requestId();
  };

  it('finds the id at either end, split across pieces, as a number or a string', () => {
    expect(scan('{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"a":"b"}}')).toBe(12);
    expect(scan('{"method":"tools/call","params":{"a":"b"},"jsonrpc":"2.0","i', 'd": 3', '4 }')).toBe(34);
    expect(scan('{"method":"x","id":"req-\\"7\\""}')).toBe('req-"7"');
    expect(scan('{"method":"x","\\u0069\\u0064":5}')).toBe(5);
  });

  it('never takes an id from inside params or a string', () => {
    expect(scan('{"method":"x","params":{"id":9,"text":"\\"id\\":8"}}')).toBeNull();
    expect(scan('{"method":"x","params":{"text":"},\\"id\\":8,{"}}')).toBeNull();
  });

  it('tells a notification (a top-level "method", no top-level "id") from a request', () => {
    const scan = (text: string) => {
      const sc = new TopLevelIdScanner();
      sc.feed(Buffer.from(text));
      return sc.isNotification();
    };
    expect(scan('{"jsonrpc":"2.0","method":"x","params":{"id":1}}')).toBe(true);
    expect(scan('{"jsonrpc":"2.0","method":"x","id":{"a":1}}')).toBe(false);
    expect(scan('{"jsonrpc":"2.0","id":null,"method":"x"}')).toBe(false);
    expect(scan('{"jsonrpc":"2.0","params":{"method":"x"}}')).toBe(false);
  });

  it('gives null for what is not a request or has no usable id', () => {
    expect(scan('{"jsonrpc":"2.0","id":3,"result":{}}')).toBeNull();
    expect(scan('{"method":"x","id":{"n":1}}')).toBeNull();
    expect(scan('{"method":"x","id":1.5}')).toBeNull();
    expect(scan('{"method":"x","id":null}')).toBeNull();
    expect(scan('[{"method":"x","id":1}]')).toBeNull();
    expect(scan('yyyyyyyy')).toBeNull();
  });
});
