/**
 * The agent's path through an honest run, as a model that follows `next` literally would walk it, through the
 * real SDK client named as Claude Code names itself (so results come back as the compact text a host shows). The
 * only call the "model" chooses is the first, loki_start; every later loki call is the one the previous result's
 * `Next:` line names, with its arguments, plus only what the model must say itself (summaries, evidence, votes).
 * The real hosts walk the same path in tests/e2e; this one runs in a second and pins the figures of issue 18.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, tempProject, text, type Connected, type TempProject } from './helpers.js';

const SPEC = [
  '# String utilities',
  '',
  'A tiny library of string helpers in src/strings.js, tested with node:test.',
  '',
  '## Requirements',
  '1. capitalize(s) returns s with its first letter in upper case.',
  '2. slugify(s) turns a title into a lower-case, hyphen-separated slug.',
  '3. truncate(s, n) shortens s to at most n characters, ending with an ellipsis when cut.',
  '4. reverse(s) returns the characters of s in reverse order.',
  '',
].join('\n');

/** The same four requirements, each with acceptance criteria: a checklist with held-out items the council judges. */
const SPEC_WITH_CRITERIA = [
  '# String utilities',
  '',
  'A tiny library of string helpers in src/strings.js, tested with node:test.',
  '',
  '## Requirements',
  '- capitalize(s) returns s with its first letter in upper case.',
  "  - capitalize('hello') is 'Hello'",
  "  - capitalize('') is ''",
  '- slugify(s) turns a title into a lower-case, hyphen-separated slug.',
  "  - slugify('Hello World!') is 'hello-world'",
  '  - the slug has no leading or trailing hyphen',
  '- truncate(s, n) shortens s to at most n characters, ending with an ellipsis when cut.',
  '  - a string of n characters or fewer is returned as it is',
  '  - a cut string ends with an ellipsis',
  '- reverse(s) returns the characters of s in reverse order.',
  "  - reverse('abc') is 'cba'",
  "  - reverse('') is ''",
  '',
].join('\n');

/** What the "model" writes for each requirement (found by the function name in the task's title). */
const WORK: Record<string, { code: string; test: string }> = {
  capitalize: {
    code: 'exports.capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);',
    test: "assert.strictEqual(capitalize('hello'), 'Hello');",
  },
  slugify: {
    code: "exports.slugify = (s) => s.toLowerCase().trim().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');",
    test: "assert.strictEqual(slugify('Hello World!'), 'hello-world');",
  },
  truncate: {
    code: "exports.truncate = (s, n) => (s.length <= n ? s : s.slice(0, Math.max(0, n - 1)) + '…');",
    test: "assert.strictEqual(truncate('abcdef', 4), 'abc…'); assert.strictEqual(truncate('ab', 4), 'ab');",
  },
  reverse: {
    code: "exports.reverse = (s) => [...s].reverse().join('');",
    test: "assert.strictEqual(reverse('abc'), 'cba');",
  },
};

interface Step {
  tool: string;
  args: Record<string, unknown>;
  work: string | null;
  add: string;
}

/** The loki call a `Next:` line names (with its JSON arguments), and the work to do before it. */
export function parseNext(resultText: string): Step | null {
  const line = resultText
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('Next: '));
  if (!line) throw new Error(`a result without a Next line:\n${resultText}`);
  const m = /(loki_[a-z_]+) (\{.*?\})(?= \(add |, then | -- |$)/.exec(line);
  if (!m) return null;
  const work = /work on (\S+) "/.exec(line.slice(0, m.index));
  const add = /\(add ([^)]*)\)/.exec(line.slice(m.index))?.[1] ?? '';
  return { tool: m[1]!, args: JSON.parse(m[2]!) as Record<string, unknown>, work: work?.[1] ?? null, add };
}

let tp: TempProject | undefined;
let c: Connected | undefined;
afterEach(async () => {
  await c?.close();
  tp?.cleanup();
  c = undefined;
  tp = undefined;
});

describe('the agent path (issue 18)', () => {
  it.each([
    ['requirements only', SPEC],
    ['acceptance criteria, some held out', SPEC_WITH_CRITERIA],
  ])(
    'an honest 4-requirement run (%s), following next literally, reaches VERIFIED in few compact calls',
    async (_kind, spec) => {
      tp = tempProject({
        git: true,
        files: {
          'package.json': JSON.stringify({ name: 'strings', private: true, scripts: { test: 'node --test' } }),
          'prd.md': spec,
          '.gitignore': 'node_modules\n',
        },
      });
      c = await connect(tp, { LOKI_HELD_OUT_SEED: 'agent-path' }, 'claude-code');
      const root = tp.root;
      const titles = new Map<string, string>();
      const done: string[] = [];
      const writeWork = (taskId: string) => {
        const title = titles.get(taskId) ?? '';
        const name = Object.keys(WORK).find((k) => title.includes(k));
        if (!name) throw new Error(`no work known for ${taskId} "${title}"`);
        done.push(name);
        const src = done.map((n) => WORK[n]!.code).join('\n');
        fs.mkdirSync(path.join(root, 'src'), { recursive: true });
        fs.mkdirSync(path.join(root, 'test'), { recursive: true });
        fs.writeFileSync(path.join(root, 'src/strings.js'), `${src}\n`);
        fs.writeFileSync(
          path.join(root, `test/${name}.test.js`),
          [
            "const test = require('node:test');",
            "const assert = require('node:assert');",
            `const { ${name} } = require('../src/strings.js');`,
            `test('${name}', () => { ${WORK[name]!.test} });`,
            '',
          ].join('\n'),
        );
      };

      const calls: { tool: string; chars: number }[] = [];
      const transcript: string[] = [];
      let step: Step | null = { tool: 'loki_start', args: { spec: 'prd.md' }, work: null, add: '' };
      let verification = 'v0001';
      for (let i = 0; step && i < 40; i++) {
        if (step.work) writeWork(step.work);
        const args = { ...step.args };
        if (step.tool === 'loki_task_complete') {
          args.summary = `implemented ${titles.get(String(args.id)) ?? args.id}`;
          args.evidence = ['src/strings.js', 'npm test'];
        }
        if (step.tool === 'loki_checklist_set')
          args.items = (args.items as { id: string }[]).map((it) => ({ ...it, evidence: 'tests in test/ pass' }));
        if (step.tool === 'loki_council_vote') {
          args.vote = 'approve';
          args.rationale = 'The tests run by the server pass and cover each requirement.';
          args.evidence = [`${verification}:tests`];
          const heldOut = /items: \{id, met, note\} for ([^)]*)/.exec(step.add)?.[1];
          if (heldOut) args.items = heldOut.split(', ').map((id) => ({ id, met: true, note: 'covered by a test' }));
        }
        const r = await c.call(step.tool, args);
        const shown = text(r);
        calls.push({ tool: step.tool, chars: shown.length });
        transcript.push(`>> ${step.tool} ${JSON.stringify(args)}\n${shown}`);
        expect(r.isError, `${step.tool} ${JSON.stringify(args)} was refused:\n${shown}`).toBeFalsy();
        // What Claude Code shows: the text alone, no structuredContent beside it.
        expect(r.structuredContent).toBeUndefined();
        // One brief at a time: each member reads only its own (the next comes back with each vote).
        expect((shown.match(/^=== seat /gm) ?? []).length).toBeLessThanOrEqual(1);
        for (const m of shown.matchAll(/^Claimed (\S+) [^:\n]*: (.+)/gm)) titles.set(m[1]!, m[2]!);
        verification = /Verification (v\d+)/.exec(shown)?.[1] ?? verification;
        step = parseNext(shown);
      }
      if (process.env.LOKI_SHOW_PATH || !fs.existsSync(path.join(root, '.loki/proofs')))
        console.error(transcript.join('\n\n'));
      const receipt = fs
        .readdirSync(path.join(root, '.loki/proofs'), { recursive: true })
        .map(String)
        .find((f) => f.endsWith('RECEIPT.md'));
      expect(receipt).toBeDefined();
      expect(fs.readFileSync(path.join(root, '.loki/proofs', receipt!), 'utf8')).toMatch(/VERIFIED/);
      const chars = calls.reduce((n, x) => n + x.chars, 0);
      const largest = calls.reduce((a, b) => (b.chars > a.chars ? b : a));
      console.error(
        `agent path: ${calls.length} loki calls, ${chars} characters, largest ${largest.tool} ${largest.chars}\n` +
          calls.map((x) => `  ${x.tool} ${x.chars}`).join('\n'),
      );
      expect(calls.length).toBeLessThanOrEqual(20);
      expect(chars).toBeLessThanOrEqual(15_000);
      expect(largest.chars).toBeLessThanOrEqual(6_000);
    },
  );
});

describe('what each host is shown (issue 18)', () => {
  it('Claude Code, Codex and Cline get the compact text alone; other clients get the structured result too', async () => {
    tp = tempProject();
    for (const [name, structuredToo] of [
      ['claude-code', false],
      ['codex-mcp-client', false],
      ['Cline', false],
      ['my-sdk-program', true],
    ] as const) {
      const client = await connect(tp, {}, name);
      const r = await client.call('loki_status', { peek: true });
      expect(r.structuredContent !== undefined, name).toBe(structuredToo);
      expect(text(r), name).toMatch(/\nNext: loki_start \{\} \(add `spec`/);
      await client.close();
    }
  });
});

describe('orphaned claims (issue 18)', () => {
  it('a task claimed by a session that stopped comes first for the next session, which resumes or releases it', async () => {
    tp = tempProject({ git: true, files: { 'prd.md': SPEC } });
    const first = await connect(tp, {}, 'claude-code');
    expect((await first.call('loki_start', { spec: 'prd.md' })).isError).toBeFalsy();
    const claimed = text(await first.call('loki_task_claim'));
    const id = /^Claimed (\S+)/.exec(claimed)![1]!;
    await first.close(); // the host ended the session: its server marks it stopped

    c = await connect(tp, {}, 'claude-code');
    const status = text(await c.call('loki_status'));
    const step = parseNext(status)!;
    expect(step).toMatchObject({ tool: 'loki_task_claim', args: { taskId: id } });
    expect(status).toMatch(new RegExp(`${id} ".*" was claimed by session s-[0-9a-f]+, which stopped: resume it`));
    const resumed = await c.call(step.tool, step.args);
    expect(resumed.isError, text(resumed)).toBeFalsy();
    expect(text(resumed)).toMatch(new RegExp(`^Claimed ${id} .*attempt 2`));
    // Its first attempt ended as released (nothing went wrong with the task), not as a failure.
    const attempts = text(await c.call('loki_task_list', { ids: [id] }));
    expect(attempts).toMatch(/released/);
  });

  it('an orphaned claim can be released without its token; a live session’s claim cannot', async () => {
    tp = tempProject({ git: true, files: { 'prd.md': SPEC } });
    const first = await connect(tp, {}, 'claude-code');
    await first.call('loki_start', { spec: 'prd.md' });
    const id = /^Claimed (\S+)/.exec(text(await first.call('loki_task_claim')))![1]!;
    c = await connect(tp, {}, 'claude-code');
    // The first session is still live: its claim is not another session's to release.
    expect((await c.call('loki_task_update', { id, action: 'release' })).isError).toBe(true);
    await first.close();
    const released = await c.call('loki_task_update', { id, action: 'release' });
    expect(released.isError, text(released)).toBeFalsy();
    expect(text(released)).toMatch(new RegExp(`^Updated ${id}: pending`));
  });
});

describe('problems already fixed (issue 18)', () => {
  it('the reasons of a refused completion stop showing once a later verification may have fixed them', async () => {
    tp = tempProject({ git: true, files: { 'prd.md': SPEC, 'package.json': '{"scripts":{"test":"node --test"}}' } });
    c = await connect(tp, {}, 'claude-code');
    await c.call('loki_start', { spec: 'prd.md' });
    expect(text(await c.call('loki_complete'))).toMatch(/^CONTINUE/);
    expect(text(await c.call('loki_status'))).toMatch(/Problem: completion refused/);
    await c.call('loki_verify');
    expect(text(await c.call('loki_status'))).not.toMatch(/completion refused/);
  });
});

describe('no result over 6,000 characters (issue 18)', () => {
  it('a long answer is cut at a line for an agent host, says how to narrow it, and keeps its Next line', async () => {
    tp = tempProject({ git: true, files: { 'prd.md': SPEC } });
    c = await connect(tp, {}, 'Cline');
    await c.call('loki_start', { spec: 'prd.md' });
    const long = 'a task title long enough to fill the list quickly '.repeat(3).trim();
    const tasks = Array.from({ length: 150 }, (_, i) => ({ id: `x${i}`, title: `${long} ${i}` }));
    expect((await c.call('loki_task_add', { tasks })).isError).toBeFalsy();
    const r = await c.call('loki_task_list', { limit: 50 });
    const shown = text(r);
    expect(shown.length).toBeLessThanOrEqual(6000);
    expect(shown).toMatch(/\.\.\. \(\d+ more characters not shown: narrow the request/);
    expect(shown.split('\n').at(-1)).toMatch(/^Next: loki_task_claim \{\}/);
    // A client that reads structuredContent still gets every row it asked for.
    const sdk = await connect(tp, {}, 'my-sdk-program');
    const full = (await sdk.call('loki_task_list', { limit: 50 })).structuredContent as { rows: unknown[] };
    expect(full.rows).toHaveLength(50);
    await sdk.close();
  });
});

describe('going back for rework (issue 18)', () => {
  it('a phase the run came back to asks for the rework, then passes again once it is done', async () => {
    tp = tempProject({ git: true, files: { 'prd.md': '# Tiny\n\n- write the greeting\n' } });
    c = await connect(tp, {}, 'claude-code');
    await c.call('loki_start', { spec: 'prd.md' });
    const first = parseNext(text(await c.call('loki_task_claim')))!;
    fs.writeFileSync(path.join(tp.root, 'greeting.txt'), 'hi\n');
    const r = await c.call(first.tool, { ...first.args, summary: 'wrote it', evidence: ['greeting.txt'] });
    expect(r.isError, text(r)).toBeFalsy();
    expect(text(await c.call('loki_status', { peek: true }))).toMatch(/phase QA/);

    // QA finds a bug: back to DEVELOPMENT, where Next asks for the rework rather than advancing at once.
    const back = text(await c.call('loki_phase_advance', { to: 'DEVELOPMENT', reason: 'the greeting is wrong' }));
    expect(back).toMatch(/^Next: loki_task_add \{\}/m);
    const added = text(await c.call('loki_task_add', { tasks: [{ id: 'fix', title: 'fix the greeting' }] }));
    expect(added).toMatch(/^Next: loki_task_claim \{\}/m);
    const claimed = text(await c.call('loki_task_claim'));
    const step = parseNext(claimed)!;
    fs.writeFileSync(path.join(tp.root, 'greeting.txt'), 'hello\n');
    const done = text(await c.call(step.tool, { ...step.args, summary: 'fixed', evidence: ['greeting.txt'] }));
    // The rework done, DEVELOPMENT passed to QA again by itself; Next leads on to verification, not more tasks.
    expect(done).not.toMatch(/^Next: loki_task_add/m);
    expect(text(await c.call('loki_status', { peek: true }))).toMatch(/phase QA/);
  });
});
