/**
 * The Claude Code hooks, run the way the host runs them: the built `dist/loki-hook.cjs` spawned with the host's
 * JSON on stdin, its stdout parsed as the decision. The guard's rules and its matrix are in guard.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  addTranscriptUsage,
  decideStop,
  MAX_CONSECUTIVE_BLOCKS,
  nextStopBlock,
  NO_USAGE,
  type StopBlock,
  type StopFacts,
} from '../mcp-server/src/domain/autonomy.js';
import {
  DIST,
  REPO_ROOT,
  connect,
  dbRows,
  docOnDisk,
  openDb,
  snapshot,
  structured,
  tempProject,
  type Connected,
  type TempProject,
} from './helpers.js';

const HOOK = path.join(DIST, 'loki-hook.cjs');
let p: TempProject | undefined;
let c: Connected | undefined;
afterEach(async () => {
  await c?.close();
  c = undefined;
  p?.cleanup();
  p = undefined;
});

function hook(
  event: string,
  input: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
): { code: number | null; out: Record<string, unknown> | null; stderr: string } {
  const r = spawnSync(process.execPath, [HOOK, event], {
    input: JSON.stringify({ cwd: p!.root, ...input }),
    env: hookEnv(env),
    encoding: 'utf8',
  });
  return {
    code: r.status,
    out: r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : null,
    stderr: r.stderr,
  };
}

/** The project's environment for a hook, without the plugin root of whatever shell runs the tests. */
function hookEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...p!.env, ...extra };
  if (!('CLAUDE_PLUGIN_ROOT' in extra)) delete env.CLAUDE_PLUGIN_ROOT;
  return env;
}

async function withRun(env: NodeJS.ProcessEnv = {}): Promise<Connected> {
  p = tempProject({ git: true });
  c = await connect(p, env);
  const r = await c.call('loki_start', { specText: '# Tool\n\n- build the thing\n', tier: 'simple' });
  expect(r.isError).toBeFalsy();
  return c;
}

describe('usage from the transcript (pure)', () => {
  it('adds each assistant message once, prices it by model, and tracks the context size', () => {
    const lines = [
      { type: 'user', message: { content: 'hi' } },
      {
        type: 'assistant',
        message: {
          id: 'm1',
          model: 'claude-sonnet-4-5',
          usage: {
            input_tokens: 1000,
            output_tokens: 500,
            cache_read_input_tokens: 10_000,
            cache_creation_input_tokens: 0,
          },
        },
      },
      {
        type: 'assistant',
        message: { id: 'm1', model: 'claude-sonnet-4-5', usage: { input_tokens: 1000, output_tokens: 500 } },
      },
      {
        type: 'assistant',
        message: {
          id: 'm2',
          model: 'claude-opus-4-1',
          usage: { input_tokens: 2000, output_tokens: 100, cache_creation_input_tokens: 3000 },
        },
      },
    ];
    const u = addTranscriptUsage(NO_USAGE, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n{torn`);
    expect(u).toMatchObject({
      inputTokens: 3000,
      outputTokens: 600,
      cacheReadTokens: 10_000,
      cacheWriteTokens: 3000,
      contextTokens: 5000,
    });
    const sonnet = (1000 * 3 + 500 * 15 + 10_000 * 0.3) / 1e6;
    const opus = (2000 * 15 + 100 * 75 + 3000 * 18.75) / 1e6;
    expect(u.costUsd).toBeCloseTo(sonnet + opus, 10);
  });
});

describe('the Stop decision (pure)', () => {
  const facts = (over: Partial<StopFacts> = {}): StopFacts => ({
    run: { runId: 'r-1', status: 'active', iteration: 3, stopReason: null },
    maxIterations: 100,
    pause: false,
    stop: false,
    budget: { limitUsd: null, spentUsd: null },
    stopHookActive: true,
    toolCalls: 10,
    lastBlock: { iteration: 3, toolCalls: 10, count: 1 },
    next: 'claim the next task',
    ...over,
  });

  it('any tool call or loki_status turn since the last block is progress; neither lets the agent go', () => {
    expect(decideStop(facts())).toMatchObject({
      block: false,
      why: expect.stringMatching(/no tool since the last block/),
    });
    expect(decideStop(facts({ toolCalls: 11 }))).toMatchObject({ block: true });
    expect(
      decideStop(facts({ run: { runId: 'r-1', status: 'active', iteration: 4, stopReason: null } })),
    ).toMatchObject({ block: true });
    // The first stop of a user turn is held even without progress.
    expect(decideStop(facts({ stopHookActive: false }))).toMatchObject({ block: true });
  });

  it('an agent that works but never calls loki_status is not held forever', () => {
    let last: StopBlock | null = null;
    let blocks = 0;
    for (let calls = 1; calls < 500; calls++) {
      const d = decideStop(facts({ toolCalls: calls, lastBlock: last }));
      if (!d.block) break;
      blocks++;
      last = nextStopBlock(last, 3, calls);
    }
    expect(blocks).toBe(MAX_CONSECUTIVE_BLOCKS);
    // A loki_status turn starts the count again.
    expect(nextStopBlock(last, 4, 600)).toEqual({ iteration: 4, toolCalls: 600, count: 1 });
  });

  it('every limit that lets the agent stop is named', () => {
    const kind = (over: Partial<StopFacts>) => {
      const d = decideStop(facts(over));
      return d.block ? 'block' : d.limit?.kind;
    };
    expect(kind({ stop: true })).toBe('stop');
    expect(kind({ pause: true })).toBe('pause');
    // The budget pauses the run too; the budget is what is named.
    expect(kind({ pause: true, budget: { limitUsd: 1, spentUsd: 1.5 } })).toBe('budget');
    expect(kind({ maxIterations: 3 })).toBe('iterations');
    expect(
      kind({ run: { runId: 'r-1', status: 'stopped', iteration: 3, stopReason: 'stagnated: no code change' } }),
    ).toBe('stopped');
    expect(kind({})).toBeUndefined();
  });
});

describe('the hooks, as the host runs them', () => {
  it('Stop blocks with the next step while the run is active, and lets go on STOP, PAUSE, completion and the iteration limit', async () => {
    await withRun();
    const first = hook('stop', { stop_hook_active: false });
    expect(first).toMatchObject({
      code: 0,
      out: {
        decision: 'block',
        reason: expect.stringMatching(/not finished.*call mcp__loki__loki_status, then/s),
      },
    });
    // The agent stops again without taking a turn: let it go rather than loop, and say so.
    expect(hook('stop', { stop_hook_active: true }).out).toEqual({
      systemMessage: expect.stringMatching(
        /let the agent stop: the agent used no tool since the last block.*still active/,
      ),
    });
    // After a real turn it is held again.
    await c!.call('loki_status');
    expect(hook('stop', { stop_hook_active: true }).out).toMatchObject({ decision: 'block' });
    fs.writeFileSync(path.join(p!.root, '.loki', 'PAUSE'), 'x');
    expect(hook('stop', { stop_hook_active: false }).out).toMatchObject({
      systemMessage: expect.stringMatching(/paused/),
    });
    fs.rmSync(path.join(p!.root, '.loki', 'PAUSE'));
    fs.writeFileSync(path.join(p!.root, '.loki', 'STOP'), 'x');
    expect(hook('stop', { stop_hook_active: false }).out).toMatchObject({
      systemMessage: expect.stringMatching(/STOP requested/),
    });
    fs.rmSync(path.join(p!.root, '.loki', 'STOP'));
    expect(hook('stop', { stop_hook_active: false }, { LOKI_MAX_ITERATIONS: '1' }).out).toMatchObject({
      systemMessage: expect.stringMatching(/iteration limit reached \(1 of 1\)/),
    });
    expect(hook('stop', { stop_hook_active: false }).out).toMatchObject({ decision: 'block' });
    // A completed run: let it stop.
    const db = openDb(p!.root, false);
    db.prepare(`UPDATE docs SET body = json_set(body, '$.status', 'completed') WHERE key = 'run'`).run();
    db.close();
    expect(hook('stop', { stop_hook_active: false }).out).toBeNull();
  });

  it('Stop counts any tool call as progress, not only loki_status turns', async () => {
    await withRun();
    expect(hook('stop', { stop_hook_active: false }).out).toMatchObject({ decision: 'block' });
    // The agent works with the host's tools (PostToolUse counts each call) without calling loki_status: it is
    // held again after each round of work, not let go as if it had done nothing.
    for (let round = 0; round < 3; round++) {
      expect(hook('post-tool-use', { tool_name: 'Edit' }).out).toBeNull();
      expect(hook('stop', { stop_hook_active: true }).out).toMatchObject({ decision: 'block' });
    }
    // A stop with no tool call since the block: let go (Claude Code would otherwise end the turn at its own cap).
    expect(hook('stop', { stop_hook_active: true }).out).toMatchObject({ systemMessage: expect.any(String) });
    expect(hook('stop', { stop_hook_active: false }).out).toMatchObject({ decision: 'block' });
  });

  it('Stop says which limit ended the run: to the user once, and to the model unless it was told', async () => {
    await withRun();
    const loki = (f: string) => path.join(p!.root, '.loki', f);
    fs.writeFileSync(loki('PAUSE'), 'x');
    // No tool call since PAUSE appeared: the model has not heard, so the stop carries context for it as well.
    expect(hook('stop', { stop_hook_active: false }).out).toEqual({
      systemMessage: expect.stringMatching(/^Loki Mode let the agent stop: paused \(\.loki\/PAUSE\); `loki resume`/),
      hookSpecificOutput: {
        hookEventName: 'Stop',
        additionalContext: expect.stringMatching(/halted: paused.*Start nothing new/),
      },
    });
    // Said once: the stop after that wrap-up turn goes through quietly.
    expect(hook('stop', { stop_hook_active: true }).out).toBeNull();
    fs.rmSync(loki('PAUSE'));

    // STOP seen at a tool call first: PostToolUse tells the model there (once), the Stop hook then tells the user.
    fs.writeFileSync(loki('STOP'), 'x');
    expect(hook('post-tool-use', { tool_name: 'Bash' }).out).toEqual({
      hookSpecificOutput: {
        hookEventName: 'PostToolUse',
        additionalContext: expect.stringMatching(/halted: STOP requested \(\.loki\/STOP\)/),
      },
    });
    expect(hook('post-tool-use', { tool_name: 'Bash' }).out).toBeNull();
    expect(hook('stop', { stop_hook_active: false }).out).toEqual({
      systemMessage: expect.stringMatching(/STOP requested/),
    });
    expect(hook('stop', { stop_hook_active: false }).out).toBeNull();
    fs.rmSync(loki('STOP'));

    // Stagnation stops the run in the loki_status call that found it, whose result told the model.
    expect(hook('post-tool-use', { tool_name: 'Bash' }).out).toBeNull();
    const db = openDb(p!.root, false);
    db.prepare(
      `UPDATE docs SET body = json_set(body, '$.status', 'stopped', '$.stopReason', 'stagnated: no code change in 4 turns') WHERE key = 'run'`,
    ).run();
    db.close();
    expect(hook('stop', { stop_hook_active: false }).out).toEqual({
      systemMessage: expect.stringMatching(/is stopped \(stagnated: no code change in 4 turns\)/),
    });
  });

  it('PostToolUse adds up spend from the transcript; at the budget the run pauses and the Stop hook lets go', async () => {
    await withRun({ LOKI_BUDGET_LIMIT: '0.05' });
    const transcript = path.join(p!.root, '..', 'transcript.jsonl');
    const line = (id: string) =>
      `${JSON.stringify({ type: 'assistant', message: { id, model: 'claude-sonnet-4-5', usage: { input_tokens: 2000, output_tokens: 1000 } } })}\n`;
    fs.writeFileSync(transcript, line('a'));
    const env = { LOKI_BUDGET_LIMIT: '0.05' };
    expect(hook('post-tool-use', { transcript_path: transcript, tool_name: 'Bash' }, env)).toMatchObject({
      code: 0,
      out: null,
    });
    let b = structured<{ budget: { spentUsd: number }; problems: string[] }>(
      await c!.call('loki_status', { peek: true }),
    );
    expect(b.budget.spentUsd).toBeCloseTo(0.021, 6);
    expect(fs.existsSync(path.join(p!.root, '.loki', 'PAUSE'))).toBe(false);
    // The same lines are not counted twice; new ones are.
    fs.appendFileSync(transcript, line('b') + line('c'));
    hook('post-tool-use', { transcript_path: transcript, tool_name: 'Bash' }, env);
    b = structured(await c!.call('loki_status', { peek: true }));
    expect(b.budget.spentUsd).toBeCloseTo(0.063, 6);
    expect(b.problems.join('\n')).toMatch(/budget reached: \$0\.06 spent of \$0\.05/);
    expect(fs.readFileSync(path.join(p!.root, '.loki', 'PAUSE'), 'utf8')).toMatch(/paused by the budget/);
    expect(hook('stop', { stop_hook_active: false }, env).out).toMatchObject({
      systemMessage: expect.stringMatching(/budget reached: \$0\.06 of \$0\.05; raise LOKI_BUDGET_LIMIT/),
    });
  });

  it('PreToolUse denies dangerous compound commands and file writes into .loki/ or outside the allowed paths', async () => {
    await withRun();
    const deny = (r: ReturnType<typeof hook>) =>
      (r.out as { hookSpecificOutput: { permissionDecision: string } } | null)?.hookSpecificOutput.permissionDecision;
    expect(deny(hook('pre-tool-use', { tool_name: 'Bash', tool_input: { command: 'npm test && rm -rf /' } }))).toBe(
      'deny',
    );
    expect(
      deny(
        hook('pre-tool-use', {
          tool_name: 'Write',
          tool_input: { file_path: path.join(p!.root, '.loki', 'state', 'run.json'), content: '{}' },
        }),
      ),
    ).toBe('deny');
    expect(hook('pre-tool-use', { tool_name: 'Bash', tool_input: { command: 'npm test' } }).out).toBeNull();
    expect(
      deny(
        hook(
          'pre-tool-use',
          { tool_name: 'Edit', tool_input: { file_path: path.join(p!.root, 'docs', 'x.md') } },
          { LOKI_ALLOWED_PATHS: 'src' },
        ),
      ),
    ).toBe('deny');
    expect(
      hook(
        'pre-tool-use',
        { tool_name: 'Edit', tool_input: { file_path: path.join(p!.root, 'src', 'x.ts') } },
        { LOKI_ALLOWED_PATHS: 'src' },
      ).out,
    ).toBeNull();
    expect(
      deny(
        hook(
          'pre-tool-use',
          { tool_name: 'Bash', tool_input: { command: 'git status; npm publish' } },
          { LOKI_BLOCKED_COMMANDS: 'npm publish' },
        ),
      ),
    ).toBe('deny');
    expect(
      deny(
        hook('pre-tool-use', { tool_name: 'Bash', tool_input: { command: 'ls' } }, { LOKI_STAGED_AUTONOMY: 'true' }),
      ),
    ).toBe('ask');
  });

  it('SessionStart briefs an active run; SessionEnd marks sessions of dead processes stopped', async () => {
    await withRun();
    const start = hook('session-start', { source: 'compact' });
    expect(start.out).toMatchObject({
      hookSpecificOutput: {
        hookEventName: 'SessionStart',
        additionalContext: expect.stringMatching(
          /Loki Mode run r-.* is active[\s\S]*call mcp__loki__loki_status first/,
        ),
      },
    });
    // A session whose process is gone (pid 2^22 - 1 is beyond Linux's default pid_max).
    const [own] = dbRows<{ key: string; body: string }>(p!.root, "SELECT key, body FROM docs WHERE kind = 'session'");
    const ghost = JSON.parse(own!.body) as Record<string, unknown>;
    const db = openDb(p!.root, false);
    db.prepare("INSERT INTO docs (key, kind, body) VALUES ('session/s-ghost', 'session', ?)").run(
      JSON.stringify({ ...ghost, id: 's-ghost', pid: 4_194_303 }),
    );
    db.close();
    expect(hook('session-end', { reason: 'exit' }).code).toBe(0);
    expect(docOnDisk(p!.root, 'session/s-ghost')).toMatchObject({
      status: 'stopped',
      stopReason: 'host session ended',
    });
    expect(docOnDisk(p!.root, own!.key)).toMatchObject({ status: 'running' });
  });

  it('SessionStart names the tools as the host shows them: the plugin, or a project .mcp.json server', async () => {
    await withRun();
    const context = (env: NodeJS.ProcessEnv) =>
      (hook('session-start', { source: 'resume' }, env).out as { hookSpecificOutput: { additionalContext: string } })
        .hookSpecificOutput.additionalContext;
    // Plugin hooks run with CLAUDE_PLUGIN_ROOT; Claude Code names the plugin's server plugin_<plugin>_<server>.
    const plugin = context({ CLAUDE_PLUGIN_ROOT: path.join(REPO_ROOT, 'plugin') });
    expect(plugin).toMatch(/call mcp__plugin_loki-mode_loki__loki_status first/);
    expect(plugin).toMatch(/tools are named mcp__plugin_loki-mode_loki__<tool>/);
    // Every tool the briefing names is named that way, none bare.
    expect(plugin.replace(/mcp__plugin_loki-mode_loki__loki_\w+/g, '')).not.toMatch(/loki_[a-z]/);
    // Hooks wired by hand beside the project's .mcp.json: the server's key there (`loki install claude` writes loki).
    expect(context({})).toMatch(/call mcp__loki__loki_status first/);
    fs.writeFileSync(
      path.join(p!.root, '.mcp.json'),
      JSON.stringify({ mcpServers: { tracker: { command: 'npx', args: ['-y', '-p', 'loki-mode', 'loki-mcp'] } } }),
    );
    const named = context({});
    expect(named).toMatch(/call mcp__tracker__loki_status first/);
    expect(named.replace(/mcp__tracker__loki_\w+/g, '')).not.toMatch(/loki_[a-z]/);
  });

  it('SessionStart reports the signals, human input and problems as loki_status would', async () => {
    await withRun({ LOKI_PROMPT_INJECTION: 'true' });
    const loki = (f: string) => path.join(p!.root, '.loki', f);
    const env = { LOKI_PROMPT_INJECTION: 'true' };
    fs.writeFileSync(loki('PAUSE'), 'x');
    fs.writeFileSync(loki('HUMAN_INPUT.md'), 'Use tabs, not spaces.');
    // A notice the hooks raised (as at 80 % of the context window): loki_status lists it as a problem.
    hook('post-tool-use', { tool_name: 'Bash' }, env);
    const db = openDb(p!.root, false);
    db.prepare(
      `UPDATE docs SET body = json_set(body, '$.notices', json('["context is 85% full: record what matters"]')) WHERE key = 'hooks'`,
    ).run();
    db.close();
    const status = structured<{ problems: string[]; next: string }>(await c!.call('loki_status', { peek: true }));
    const briefed = (
      hook('session-start', { source: 'resume' }, env).out as { hookSpecificOutput: { additionalContext: string } }
    ).hookSpecificOutput.additionalContext;
    expect(briefed).toMatch(/^Signals: PAUSE\.$/m);
    expect(briefed).toMatch(/^Human input: the user left a directive in \.loki\/HUMAN_INPUT\.md/m);
    for (const problem of status.problems) expect(briefed).toContain(`Problem: ${problem}`);
    expect(briefed).toMatch(/^Resume: call mcp__loki__loki_status first, then PAUSED by the user/m);
    // The briefing only looks: the directive is still there for loki_status to deliver.
    expect(fs.existsSync(loki('HUMAN_INPUT.md'))).toBe(true);

    // A stopped run is briefed as stopped, with why, not left unsaid.
    const stopped = openDb(p!.root, false);
    stopped
      .prepare(
        `UPDATE docs SET body = json_set(body, '$.status', 'stopped', '$.stopReason', 'iteration limit (3) reached') WHERE key = 'run'`,
      )
      .run();
    stopped.close();
    expect(
      (hook('session-start', { source: 'resume' }, env).out as { hookSpecificOutput: { additionalContext: string } })
        .hookSpecificOutput.additionalContext,
    ).toMatch(
      /is stopped \(iteration limit \(3\) reached\)[\s\S]*Nothing to resume: a new run starts with mcp__loki__loki_start/,
    );
  });

  it('outside a Loki Mode project every hook says nothing and writes nothing', () => {
    p = tempProject({ git: true, files: { 'a.txt': 'x' } });
    const before = snapshot(p.root);
    for (const [event, input] of [
      ['session-start', { source: 'startup' }],
      ['pre-tool-use', { tool_name: 'Bash', tool_input: { command: 'rm -rf node_modules' } }],
      ['post-tool-use', { tool_name: 'Bash' }],
      ['stop', { stop_hook_active: false }],
      ['session-end', {}],
    ] as const) {
      expect(hook(event, input)).toMatchObject({ code: 0, out: null });
    }
    expect(snapshot(p.root)).toEqual(before);
  });

  it('reads input the host writes in pieces, and the guard fails closed on input over 4 MB', async () => {
    await withRun();
    const child = spawn(process.execPath, [HOOK, 'pre-tool-use'], { env: p!.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const text = JSON.stringify({ cwd: p!.root, tool_name: 'Bash', tool_input: { command: 'npm test && rm -rf /' } });
    child.stdin.write(text.slice(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 150));
    child.stdin.end(text.slice(20));
    expect(await exited).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ hookSpecificOutput: { permissionDecision: 'deny' } });

    const big = spawnSync(process.execPath, [HOOK, 'pre-tool-use'], {
      input: `{"cwd":${JSON.stringify(p!.root)},"x":"${'a'.repeat(4 * 1024 * 1024)}"}`,
      env: p!.env,
      encoding: 'utf8',
    });
    expect(big.status).toBe(0);
    expect(JSON.parse(big.stdout)).toMatchObject({ hookSpecificOutput: { permissionDecision: 'deny' } });
    expect(big.stderr).toMatch(/hook input over 4194304 bytes.*refused the action/);
  });

  it('fails open with a message on bad input, and never loads the MCP SDK', () => {
    p = tempProject();
    const r = spawnSync(process.execPath, [HOOK, 'stop'], { input: '{not json', env: p.env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/loki-hook: .*let the action through/);
    for (const bundle of ['hook.cjs', 'hook-usage.cjs', 'hook-guard.cjs']) {
      const code = fs.readFileSync(path.join(DIST, bundle), 'utf8');
      expect(code).not.toContain('@modelcontextprotocol');
      // Record schemas are zod/mini (store/schema.ts): classic zod would cost every hook start milliseconds.
      expect(code).not.toContain('"ZodString"');
    }
  });
});
