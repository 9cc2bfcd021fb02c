/**
 * A person steering a run from the terminal (issue 20, item 3) and watching it (item 2), with the `loki` CLI
 * spawned from dist as a person runs it, against runs driven through the real SDK client (tests/fixtures/sum-run.ts):
 * - tasks added, edited, blocked, released (an agent's claim overridden) and unblocked, each audited as the
 *   person's action;
 * - the phase moved through the same exit criteria as the agent's loki_phase_advance;
 * - a checklist item waived by a person shows in the receipt of the completed run as the person's waiver;
 * - `loki say` writes HUMAN_INPUT.md only with LOKI_PROMPT_INJECTION=true; refused, it changes nothing;
 * - `loki status --watch` off a terminal prints a line when an agent claims a task.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Project } from '../mcp-server/src/project.js';
import { steerTask } from '../mcp-server/src/queue/steer.js';
import { DIST, auditLines, docOnDisk, phaseOf, reach, structured, type Connected } from './helpers.js';
import { GOOD_SUM, README, closeAll, ok, project, started, write } from './fixtures/sum-run.js';

afterEach(closeAll);

/** The `loki` command, as a person runs it. */
function loki(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: project().root,
    env: { ...project().env, ...env },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const PERSON = /^person:.+ via cli:\d+$/;
const lastAudit = (action: string) =>
  auditLines(project().root)
    .filter((e) => e.action === action)
    .at(-1);

interface TaskDoc {
  id: string;
  status: string;
  title: string;
  priority: string;
  source: { kind: string };
  blockedReason: string | null;
  attempts: { agent: string; outcome: string | null; error: string | null }[];
}
/** The task as stored (`loki tasks show --json`, a read). */
const task = async (_c: Connected, id: string) => JSON.parse(loki(['tasks', 'show', id, '--json']).out) as TaskDoc;

interface Claim {
  task: { id: string } | null;
  token: string;
}

describe('loki tasks add|edit|block|release|unblock', () => {
  it(
    'changes the queue under the agent rules, each change recorded as the person’s action',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      const added = loki([
        'tasks',
        'add',
        'write',
        'the',
        'changelog',
        '--priority',
        'critical',
        '--acceptance',
        'CHANGELOG.md exists',
      ]);
      expect(added, added.err).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Added (t\d+) \(critical, DEVELOPMENT\): write the changelog/),
      });
      const id = /^Added (t\d+)/.exec(added.out)![1]!;
      expect(await task(c, id)).toMatchObject({
        title: 'write the changelog',
        priority: 'critical',
        source: { kind: 'user' },
      });
      expect(lastAudit('task.add')).toMatchObject({ actor: expect.stringMatching(PERSON), data: { ids: [id] } });
      // The agent's own additions stay the agent's.
      expect(
        auditLines(project().root).filter((e) => e.action === 'task.add' && PERSON.test(String(e.actor))),
      ).toHaveLength(1);

      expect(loki(['tasks', 'edit', id, '--title', 'write the CHANGELOG', '--priority', 'low'])).toMatchObject({
        code: 0,
      });
      expect(await task(c, id)).toMatchObject({ title: 'write the CHANGELOG', priority: 'low' });
      expect(lastAudit('task.edit')).toMatchObject({ actor: expect.stringMatching(PERSON), target: id });
      expect(loki(['tasks', 'edit', id, '--priority', 'urgent'])).toMatchObject({
        code: 2,
        err: expect.stringMatching(/not a priority/),
      });
      expect(loki(['tasks', 'edit', id]).code).toBe(2);

      // The agent claims it; a person releases it without the agent's token: an override, on the record.
      const claim = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder', taskId: id }));
      expect(claim.task?.id).toBe(id);
      // The override is a person's only: an agent's release needs the token, and the service behind
      // `loki tasks release` refuses a server process.
      expect((await c.call('loki_task_update', { id, action: 'release' })).isError).toBe(true);
      const server = new Project({ root: project().root, env: project().env, actor: 'mcp:1' });
      try {
        await expect(steerTask(server, id, 'release', undefined)).rejects.toThrow(
          /only a person at the loki command line/,
        );
      } finally {
        server.close();
      }
      expect(await task(c, id)).toMatchObject({ status: 'in-progress' });
      const released = loki(['tasks', 'release', id, '--reason', 'the user is writing it by hand']);
      expect(released, released.err).toMatchObject({
        code: 0,
        out: expect.stringMatching(/pending again: builder's claim ended/),
      });
      expect(await task(c, id)).toMatchObject({ status: 'pending' });
      expect(lastAudit('task.release')).toMatchObject({
        actor: expect.stringMatching(PERSON),
        data: { status: 'pending', reason: 'the user is writing it by hand', override: { heldBy: 'builder' } },
      });
      // The agent's token no longer holds it.
      expect((await c.call('loki_task_complete', { id, token: claim.token, summary: 'done' })).isError).toBe(true);
      // Nothing to release now.
      expect(loki(['tasks', 'release', id])).toMatchObject({ code: 1, err: expect.stringMatching(/not in progress/) });

      // Block (a claim by the agent ends too) needs a reason; unblock puts it back.
      const again = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder', taskId: id }));
      expect(again.task?.id).toBe(id);
      expect(loki(['tasks', 'block', id]).code).toBe(2);
      expect(loki(['tasks', 'block', id, '--reason', 'waits for the release notes'])).toMatchObject({ code: 0 });
      expect(await task(c, id)).toMatchObject({ status: 'blocked', blockedReason: 'waits for the release notes' });
      expect(lastAudit('task.block')).toMatchObject({
        actor: expect.stringMatching(PERSON),
        data: { override: { heldBy: 'builder' } },
      });
      expect(loki(['tasks', 'unblock', id])).toMatchObject({ code: 0 });
      expect(await task(c, id)).toMatchObject({ status: 'pending', blockedReason: null });
      expect(lastAudit('task.unblock')).toMatchObject({ actor: expect.stringMatching(PERSON) });
      // The same rules as the agent's: an unknown dependency is refused, and the refusal changes nothing.
      const before = auditLines(project().root).length;
      expect(loki(['tasks', 'edit', id, '--depends', 'nope'])).toMatchObject({ code: 1 });
      expect(auditLines(project().root)).toHaveLength(before);
    },
  );
});

describe('loki phase advance|back', () => {
  it('moves the phase through the same exit criteria as the agent, as the person', { timeout: 60_000 }, async () => {
    const c = await started();
    expect(await phaseOf(c)).toBe('DEVELOPMENT');
    // Forward past open tasks: refused with the criteria, as the agent is.
    const held = loki(['phase', 'advance']);
    expect(held).toMatchObject({
      code: 1,
      out: expect.stringMatching(
        /^Not moved: the run stays in DEVELOPMENT \(asked: QA\)\.\n(- .*\n)*- 2 task\(s\) of this phase are still open/,
      ),
    });
    // Said for a person: the command to move a task, not the agent's tool.
    expect(held.out).toMatch(/move them with `loki tasks edit ID --phase PHASE`/);
    expect(loki(['phase', 'advance', 'bootstrap'])).toMatchObject({
      code: 1,
      err: expect.stringMatching(/comes before DEVELOPMENT: `loki phase back BOOTSTRAP/),
    });
    expect(loki(['phase', 'back', 'BOOTSTRAP'])).toMatchObject({ code: 2 });
    const back = loki(['phase', 'back', 'bootstrap', '--reason', 'the spec needs another read']);
    expect(back, back.err).toMatchObject({
      code: 0,
      out: 'Phase DEVELOPMENT -> BOOTSTRAP (the spec needs another read).\n',
    });
    expect(await phaseOf(c)).toBe('BOOTSTRAP');
    expect(lastAudit('phase.advance')).toMatchObject({
      actor: expect.stringMatching(PERSON),
      data: { from: 'DEVELOPMENT', to: 'BOOTSTRAP', reason: 'the spec needs another read' },
    });
    expect(loki(['phase', 'advance', 'DEVELOPMENT'])).toMatchObject({
      code: 0,
      out: 'Phase BOOTSTRAP -> DEVELOPMENT.\n',
    });
    expect(await phaseOf(c)).toBe('DEVELOPMENT');
  });
});

describe('loki say', () => {
  it(
    'is refused with the reason when LOKI_PROMPT_INJECTION is off, and changes nothing',
    { timeout: 60_000 },
    async () => {
      await started();
      // Each command has its own help, and a mistyped subcommand gets the one meant.
      expect(loki(['say', '--help'])).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Usage:\n {2}say TEXT\.\.\..*\n.*LOKI_PROMPT_INJECTION=true/),
      });
      expect(loki(['phase', 'advnce'])).toMatchObject({
        code: 2,
        err: expect.stringMatching(/did you mean `loki phase advance`/),
      });
      expect(loki(['tasks', 'relase', 't1'])).toMatchObject({
        code: 2,
        err: expect.stringMatching(/did you mean `loki tasks release`/),
      });
      const before = auditLines(project().root);
      const r = loki(['say', 'use', 'tabs', 'not', 'spaces']);
      expect(r).toMatchObject({
        code: 1,
        err: expect.stringMatching(/directives are off: LOKI_PROMPT_INJECTION is not true.*Nothing was written/),
      });
      expect(fs.existsSync(path.join(project().root, '.loki', 'HUMAN_INPUT.md'))).toBe(false);
      expect(auditLines(project().root)).toEqual(before);
    },
  );

  it(
    'writes HUMAN_INPUT.md as the person when it is on; the agent’s next turn gets it',
    { timeout: 60_000 },
    async () => {
      const c = await started({ LOKI_PROMPT_INJECTION: 'true' });
      const on = { LOKI_PROMPT_INJECTION: 'true' };
      expect(loki(['say', 'use', 'tabs', 'not', 'spaces'], on)).toMatchObject({
        code: 0,
        out: expect.stringMatching(/^Written to \.loki\/HUMAN_INPUT\.md/),
      });
      expect(loki(['say', 'and keep the README short'], on)).toMatchObject({
        code: 0,
        out: expect.stringMatching(/after the directive still waiting/),
      });
      expect(lastAudit('human-input.write')).toMatchObject({ actor: expect.stringMatching(PERSON) });
      const b = structured<{ signals: { humanInput: { status: string; text: string } } }>(await c.call('loki_status'));
      expect(b.signals.humanInput).toMatchObject({
        status: 'delivered',
        text: 'use tabs not spaces\n\nand keep the README short\n',
      });
    },
  );
});

/** The code and README written, every visible item without a check marked met except `keep`. */
async function writeTheCode(c: Connected, keep: (i: { id: string; text: string }) => boolean): Promise<string[]> {
  write('src/sum.js', GOOD_SUM);
  write('README.md', README);
  const list = structured<{ items: { id: string; text: string; check: unknown; status: string }[] }>(
    await c.call('loki_checklist_get'),
  );
  const manual = list.items.filter((i) => !i.check && i.status === 'open');
  const mark = manual.filter((i) => !keep(i));
  if (mark.length)
    ok(
      await c.call('loki_checklist_set', {
        items: mark.map((i) => ({ id: i.id, status: 'met', evidence: 'test/sum.test.js covers it' })),
      }),
    );
  return manual.filter(keep).map((i) => i.id);
}

async function finishQueue(c: Connected): Promise<void> {
  let claim = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder' }));
  while (claim.task) {
    ok(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'done' }));
    claim = structured(await c.call('loki_task_claim', { agent: 'builder' }));
  }
}

async function approve(c: Connected): Promise<void> {
  const conv = ok(await c.call('loki_council_convene'));
  const held = conv.heldOutToJudge as string[];
  const evidence = [`${conv.verification as string}:tests node --test is green`];
  let last: Record<string, unknown> = {};
  for (const seat of [1, 2, 3])
    last = ok(
      await c.call('loki_council_vote', {
        council: conv.council,
        seat,
        vote: 'approve',
        rationale: `seat ${seat} judged the facts`,
        evidence,
        items: held.map((h) => ({ id: h, met: true, note: 'checked' })),
      }),
    );
  if (last.outcome === 'devils-advocate')
    ok(
      await c.call('loki_council_vote', {
        council: conv.council,
        seat: 0,
        vote: 'approve',
        rationale: 'could not break it',
        evidence,
      }),
    );
}

describe('loki checklist and loki waive item', () => {
  it(
    'a person waives a checklist item; the completed run’s receipt shows it as the person’s waiver',
    { timeout: 120_000 },
    async () => {
      const c = await started();
      const [item] = await writeTheCode(c, (i) => i.text === 'sum(0, 0) is 0');
      expect(item).toBeDefined();
      const list = loki(['checklist']);
      expect(list, list.err).toMatchObject({
        code: 0,
        out: expect.stringMatching(new RegExp(`${item}\\s+open\\s+-\\s+sum\\(0, 0\\) is 0`)),
      });
      expect(loki(['waive', 'item', item!]).code).toBe(2);
      expect(loki(['waive', 'item', 'c-nothere', '--reason', 'no such item here'])).toMatchObject({
        code: 1,
        err: expect.stringMatching(/no checklist item "c-nothere" \(`loki checklist`/),
      });
      const waived = loki(['waive', 'item', item!, '--reason', 'zero is covered by the adds test']);
      expect(waived, waived.err).toMatchObject({
        code: 0,
        out: expect.stringMatching(`^Recorded w001 waives checklist item\\(s\\): ${item}; given by the user`),
      });
      expect(lastAudit('run.waive')).toMatchObject({
        actor: expect.stringMatching(PERSON),
        data: { waiver: 'w001', kind: 'item', items: [item], by: 'person' },
      });
      expect(loki(['checklist']).out).toMatch(new RegExp(`${item}\\s+waived \\(w001\\)`));

      await finishQueue(c);
      expect((await reach(c, 'QA')).ok).toBe(true);
      ok(await c.call('loki_verify'));
      await approve(c);
      const done = ok(await c.call('loki_complete'));
      expect(done, JSON.stringify(done.reasons)).toMatchObject({ status: 'COMPLETE', headline: 'VERIFIED WITH GAPS' });
      const runId = docOnDisk<{ runId: string }>(project().root, 'run')!.runId;
      const dir = path.join(project().root, '.loki', 'proofs', runId);
      const md = fs.readFileSync(path.join(dir, 'RECEIPT.md'), 'utf8');
      expect(md).toContain(
        `- WAIVED ${item} "sum(0, 0) is 0" (a person's waiver at the loki CLI, w001): zero is covered by the adds test`,
      );
      expect(md).toMatch(
        new RegExp(
          `## WAIVED AT THE loki CLI .*\\n\\n- w001 waives checklist item\\(s\\): ${item}; given by the user .*: zero is covered by the adds test\\n`,
        ),
      );
      const assessments = JSON.parse(fs.readFileSync(path.join(dir, 'ASSESSMENTS.json'), 'utf8')) as {
        waivers: Record<string, unknown>[];
        personWaivers: Record<string, unknown>[];
      };
      expect(assessments.waivers).toEqual([
        expect.objectContaining({ id: item, by: 'a person at the loki CLI (w001)' }),
      ]);
      expect(assessments.personWaivers).toEqual([
        expect.objectContaining({ id: 'w001', kind: 'item', items: [item], usedAtCompletion: true }),
      ]);
      expect(loki(['proof', 'verify'])).toMatchObject({ code: 0 });
    },
  );
});

/** `loki status --watch` spawned, its output (stdout and stderr) gathered as it comes. */
function watching(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { cwd: project().root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = { out: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (seen.out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (seen.out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 100 && !re.test(seen.out); i++) await new Promise((r) => setTimeout(r, 100));
    expect(seen.out).toMatch(re);
  };
  return { child, seen, exited, until };
}

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('loki status --watch', () => {
  it(
    'off a terminal prints a line when an agent claims a task, no escape codes, and ends when the run stops',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      const w = watching(process.execPath, [path.join(DIST, 'loki.js'), 'status', '--watch'], {
        ...project().env,
        FORCE_COLOR: '',
      });
      try {
        await w.until(/DEVELOPMENT \(simple\).*tasks: 2 pending, 0 in progress/);
        const lines = w.seen.out.split('\n').length;
        const claim = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder' }));
        await w.until(
          new RegExp(
            `tasks: 1 pending, 1 in progress, 0 completed \\| ${claim.task!.id} in progress by builder until \\d\\d:\\d\\d`,
          ),
        );
        expect(w.seen.out.split('\n').length).toBeGreaterThan(lines);
        expect(w.seen.out).not.toContain('\u001b[');
        // The run ends (STOP, taken at the agent's next turn): the watch ends by itself.
        expect(loki(['stop']).code).toBe(0);
        await w.until(/signals: STOP/);
        ok(await c.call('loki_status'));
        await w.until(/ stopped DEVELOPMENT/);
        expect(await w.exited).toBe(0);
      } finally {
        w.child.kill('SIGINT');
      }
    },
  );

  it('with --json prints one JSON object per change, and ends when the run stops', { timeout: 60_000 }, async () => {
    const c = await started();
    const w = watching(process.execPath, [path.join(DIST, 'loki.js'), 'status', '--watch', '--json'], project().env);
    try {
      await w.until(/"phase":"DEVELOPMENT"/);
      const claim = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder' }));
      await w.until(new RegExp(`"held":\\[\\{"id":"${claim.task!.id}"`));
      expect(loki(['stop']).code).toBe(0);
      ok(await c.call('loki_status'));
      expect(await w.exited).toBe(0);
      // Every line is one JSON object: the status, its time, and the tasks in progress.
      const views = w.seen.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { at: string; run: { status: string }; held: { id: string }[] });
      expect(views.length).toBeGreaterThanOrEqual(3);
      expect(views.every((v) => !Number.isNaN(Date.parse(v.at)))).toBe(true);
      expect(views.some((v) => v.held.some((t) => t.id === claim.task!.id))).toBe(true);
      expect(views.at(-1)!.run.status).toBe('stopped');
    } finally {
      w.child.kill('SIGINT');
    }
  });

  it.skipIf(!hasScript)(
    'on a terminal redraws the view in colour, and Ctrl-C leaves it',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      const command = [process.execPath, path.join(DIST, 'loki.js'), 'status', '--watch']
        .map((a) => `'${a}'`)
        .join(' ');
      const env = { ...project().env, TERM: 'xterm', NO_COLOR: '', FORCE_COLOR: '' };
      const w = watching('script', ['-qec', command, '/dev/null'], env);
      try {
        await w.until(/Tasks {4}2 pending, 0 in progress/);
        expect(w.seen.out).toContain('\u001b[H\u001b[2J');
        expect(w.seen.out).toContain('\u001b[1m DEVELOPMENT \u001b[0m');
        const claim = structured<Claim>(await c.call('loki_task_claim', { agent: 'builder' }));
        await w.until(
          new RegExp(`${claim.task!.id}\\u001b\\[0m Add a sum function {2}\\u001b\\[2mby builder, lease until`),
        );
        expect(w.seen.out.split('\u001b[H\u001b[2J').length).toBeGreaterThanOrEqual(3);
      } finally {
        w.child.kill('SIGINT');
      }
      expect(await w.exited).toBe(0);
    },
  );
});
