/**
 * The trust layer end to end, through the real SDK client, on real temporary git repositories whose real test
 * command (`node --test`) the server runs itself. Every refusal reason of the issue, a correct run with its
 * VERIFIED receipt checked by `loki proof verify` (then broken by an edit), held-out items absent from every
 * output before completion is claimed, and voting by one agent in turns and by three separate clients.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIST,
  dbRows,
  keptHeldOut,
  openDb,
  phaseOf,
  reach,
  structured,
  tempProject,
  text,
  type Connected,
} from './helpers.js';
import { GOOD_SUM, README, TEST_FILE, closeAll, ok, open, project, started, use, write } from './fixtures/sum-run.js';

afterEach(closeAll);

interface Item {
  id: string;
  text: string;
  heldOut: boolean;
  check: { kind: string } | null;
  status: string;
}

/** Finish the queue and walk the phases to the last one of the tier: completion means the work was done. */
async function finishTasks(c: Connected): Promise<void> {
  // BOOTSTRAP had nothing to do: the server passed it at the start.
  expect(await phaseOf(c)).toBe('DEVELOPMENT');
  let claim = structured<{ task: { id: string } | null; token: string }>(
    await c.call('loki_task_claim', { agent: 'builder' }),
  );
  while (claim.task) {
    ok(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'done' }));
    claim = structured(await c.call('loki_task_claim', { agent: 'builder' }));
  }
  const advanced = await reach(c, 'QA');
  expect(advanced.ok, JSON.stringify(advanced.reasons)).toBe(true);
}

/** Do the work well: code, README, every task and phase, and every visible item without a check marked met. */
async function doTheWork(c: Connected): Promise<void> {
  write('src/sum.js', GOOD_SUM);
  write('README.md', README);
  await finishTasks(c);
  await markManualItemsMet(c);
}

/** Every visible item without a machine check marked met, with evidence (the agent's word; the council judges it). */
async function markManualItemsMet(c: Connected): Promise<void> {
  const list = structured<{ items: Item[] }>(await c.call('loki_checklist_get'));
  const manual = list.items.filter((i) => !i.check && i.status === 'open');
  if (manual.length)
    ok(
      await c.call('loki_checklist_set', {
        items: manual.map((i) => ({ id: i.id, status: 'met', evidence: 'test/sum.test.js "negative" covers it' })),
      }),
    );
}

async function turns(c: Connected, n: number): Promise<void> {
  for (let i = 0; i < n; i++) ok(await c.call('loki_status'));
}

/** Convene and vote every seat (one agent in turns); `votes` per seat, and the devil's advocate's vote when asked. */
async function council(
  c: Connected,
  votes: string[],
  devil = 'approve',
  itemsMet = true,
): Promise<Record<string, unknown>> {
  const conv = ok(await c.call('loki_council_convene'));
  const id = conv.council as string;
  const held = conv.heldOutToJudge as string[];
  const evidence = [`${conv.verification as string}:tests node --test is green`];
  let last: Record<string, unknown> = {};
  for (const [i, vote] of votes.entries()) {
    last = ok(
      await c.call('loki_council_vote', {
        council: id,
        seat: i + 1,
        vote,
        rationale: `seat ${i + 1} judged the facts`,
        evidence,
        items: held.map((h) => ({ id: h, met: itemsMet, note: 'checked' })),
      }),
    );
  }
  if (last.outcome === 'devils-advocate')
    last = ok(
      await c.call('loki_council_vote', {
        council: id,
        seat: 0,
        vote: devil,
        rationale: 'tried to break it and could not',
        evidence,
      }),
    );
  return last;
}

async function complete(
  c: Connected,
): Promise<{ status: string; reasons: string[]; headline: string | null; receipt: string | null }> {
  return ok(await c.call('loki_complete')) as never;
}

function cli(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: project().root,
    env: project().env,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('completion is refused, with the reason', () => {
  it('for red tests', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    write('src/sum.js', 'exports.sum = (a, b) => a - b;\n');
    ok(await c.call('loki_verify'));
    const r = await complete(c);
    expect(r.status).toBe('CONTINUE');
    expect(r.reasons.join('\n')).toMatch(/Tests failed/);
    // The finding reaches the agent's briefing.
    expect(text(await c.call('loki_status'))).toMatch(/completion refused: .*Tests failed/);
  });

  it('for zero tests', { timeout: 60_000 }, async () => {
    // A runner that runs nothing: every test filtered out.
    const c = await started({}, 'node --test --experimental-test-isolation=none --test-name-pattern=nomatch');
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(/Zero tests ran/);
  });

  it('for an empty diff', { timeout: 60_000 }, async () => {
    const c = await started();
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(/Nothing changed since the run's baseline/);
  });

  it('for a deleted test file', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    write('test/other.test.js', "const test = require('node:test');\ntest('other', () => {});\n");
    fs.rmSync(path.join(project().root, 'test/sum.test.js'));
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(/Test file test\/sum\.test\.js was deleted/);
  });

  it('for a newly skipped test', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    write('test/sum.test.js', TEST_FILE.replace("test('negative'", "test.skip('negative'"));
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(/sum\.test\.js skips more tests than at the baseline/);
  });

  it('for a secret in a changed file (and the secret is stored nowhere)', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    const secret = 'AKIAIOSFODNN7REALKEY';
    write('src/config.js', `exports.key = '${secret}';\n`);
    const v = await c.call('loki_verify');
    const r = await complete(c);
    expect(r.reasons.join('\n')).toMatch(/src\/config\.js holds what looks like a secret/);
    expect(JSON.stringify([v, r])).not.toContain(secret);
    const stored = spawnSync('grep', ['-r', '-l', secret, path.join(project().root, '.loki')], { encoding: 'utf8' });
    expect(stored.stdout).toBe('');
  });

  it('for an unmet checklist item', { timeout: 60_000 }, async () => {
    const c = await started();
    write('src/sum.js', GOOD_SUM);
    write('README.md', README);
    ok(await c.call('loki_verify'));
    const reasons = (await complete(c)).reasons.join('\n');
    expect(reasons).toMatch(
      /checklist item c-[0-9a-f]{8} "sum\(0, 0\) is 0" is not met: do it and mark it met with evidence/,
    );
  });

  it('for a failing held-out item', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    await turns(c, 1);
    // The held-out items are revealed at the claim; the council finds the one without a check unmet.
    const last = await council(c, ['approve', 'approve', 'reject'], 'approve', false);
    expect(last.outcome).toBe('approved');
    const r = await complete(c);
    expect(r.reasons).toEqual([
      expect.stringMatching(
        /^held-out item c-[0-9a-f]{8} "The sum function handles negative numbers" was found met by only 0 council member/,
      ),
    ]);
  });

  it('without a council quorum', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    const conv = ok(await c.call('loki_council_convene'));
    ok(
      await c.call('loki_council_vote', {
        council: conv.council,
        seat: 1,
        vote: 'approve',
        rationale: 'looks right to me',
        evidence: [`${conv.verification as string}:tests`],
        items: (conv.heldOutToJudge as string[]).map((id) => ({ id, met: true, note: '' })),
      }),
    );
    expect((await complete(c)).reasons.join('\n')).toMatch(/no council quorum: 1 of 3 votes/);
  });

  it("when the devil's advocate vetoes a unanimous approval", { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    const last = await council(c, ['approve', 'approve', 'approve'], 'reject');
    expect(last.outcome).toBe('rejected');
    expect((await complete(c)).reasons.join('\n')).toMatch(/devil's advocate vetoed the unanimous approval/);
  });

  it('for votes made before the last code change', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    expect((await council(c, ['approve', 'approve', 'reject'])).outcome).toBe('approved');
    write('src/extra.js', 'exports.x = 1;\n');
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(/voted before the last code change/);
  });
});

describe('a correct run', () => {
  it(
    'completes with a VERIFIED receipt that `loki proof verify` checks, and catches edits to it or to the code',
    { timeout: 90_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      const v = ok(await c.call('loki_verify'));
      expect(v.blocking).toEqual({ items: [], more: 0 });
      expect((await council(c, ['approve', 'approve', 'approve'], 'approve')).outcome).toBe('approved');
      expect(keptHeldOut(project())).toHaveLength(2);
      const r = await complete(c);
      expect(r, JSON.stringify(r.reasons)).toMatchObject({ status: 'COMPLETE', headline: 'VERIFIED' });
      // Accepted: the held-out set kept outside the project is done with.
      expect(keptHeldOut(project())).toEqual([]);
      const dir = path.join(project().root, '.loki', 'proofs');
      const runId = fs.readdirSync(dir)[0]!;
      const receipt = fs.readFileSync(path.join(dir, runId, 'RECEIPT.md'), 'utf8');
      expect(receipt).toMatch(/^# VERIFIED/);
      expect(receipt).toMatch(/## FACTS[\s\S]*## ASSESSMENTS/);
      expect(fs.readFileSync(path.join(dir, runId, 'COMPLETION.txt'), 'utf8')).toMatch(/^VERIFIED: run /);
      expect(structured<{ run: { status: string } }>(await c.call('loki_status', { peek: true })).run.status).toBe(
        'completed',
      );

      expect(cli('proof', 'verify')).toMatchObject({ code: 0, out: expect.stringMatching(/^OK: receipt/) });
      // The hash a person keeps outside the agent's reach is the one the audit log recorded at completion.
      const manifest = /Manifest sha256 ([0-9a-f]{64})/.exec(cli('proof', 'verify').out)?.[1];
      const completed = dbRows<{ manifest: string }>(
        project().root,
        "SELECT data ->> '$.manifest' AS manifest FROM audit WHERE action = 'run.complete'",
      );
      expect(manifest).toBe(completed[0]?.manifest);
      // Every record a whole run wrote (checkpoints and their gate included) is one doctor knows and finds sound.
      const doctor = cli('doctor');
      expect(doctor.code, doctor.out).toBe(0);
      expect(doctor.out).toMatch(/ok\s+records\s+every record matches its schema/);
      // Tamper with the receipt.
      const facts = path.join(dir, runId, 'FACTS.json');
      const original = fs.readFileSync(facts, 'utf8');
      fs.writeFileSync(facts, original.replace('"pass"', '"fail"'));
      expect(cli('proof', 'verify', runId)).toMatchObject({
        code: 1,
        out: expect.stringMatching(/FACTS\.json was changed after completion/),
      });
      fs.writeFileSync(facts, original);
      expect(cli('proof', 'verify', runId).code).toBe(0);
      // Edit the code.
      write('src/sum.js', 'exports.sum = (a, b) => a + b + 0;\n');
      expect(cli('proof', 'verify', runId)).toMatchObject({
        code: 1,
        out: expect.stringMatching(/the code changed since completion \(drift/),
      });
    },
  );

  it('never shows a held-out item in any output before completion is claimed', { timeout: 90_000 }, async () => {
    const outputs: string[] = [];
    const c = await started();
    const record = (r: CallToolResult) => {
      outputs.push(JSON.stringify(r));
      return r;
    };
    const list = JSON.parse(
      dbRows<{ body: string }>(project().root, "SELECT body FROM docs WHERE kind = 'checklist'")[0]!.body,
    ) as { items: Item[] };
    // The set is kept outside the project: nothing under it labels an item held out, not even the stored record.
    const kept = keptHeldOut(project());
    const held = list.items.filter((i) => kept.includes(i.id));
    expect(held.length).toBe(2);
    expect(list.items.some((i) => i.heldOut)).toBe(false);
    const underProject = (dir: string): string =>
      fs
        .readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((f) => !f.startsWith('.git') && fs.statSync(path.join(dir, f)).isFile())
        .map((f) => fs.readFileSync(path.join(dir, f), 'latin1'))
        .join('\n');
    expect(underProject(project().root)).not.toMatch(/"heldOut":\s*true|held-?out"?\s*:\s*\[\s*"c-/i);
    // Every tool an agent uses while building, before it claims completion (the loki_start answer included).
    record(await c.call('loki_start', {}));
    record(await c.call('loki_status'));
    record(await c.call('loki_checklist_get'));
    record(await c.call('loki_task_list'));
    let claim = structured<{ task: { id: string } | null; token: string }>(
      record(await c.call('loki_task_claim', { agent: 'builder' })),
    );
    while (claim.task) {
      record(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'done' }));
      claim = structured(record(await c.call('loki_task_claim', { agent: 'builder' })));
    }
    await doTheWork(c);
    // Calling loki_complete before the facts hold reveals nothing.
    record(await c.call('loki_complete'));
    record(await c.call('loki_verify'));
    record(await c.call('loki_checklist_get'));
    record(await c.call('loki_status'));
    record(await c.call('loki_memory_search', { query: 'sum negative numbers' }));
    for (const r of await c.client.listResources().then((l) => l.resources))
      outputs.push(JSON.stringify(await c.client.readResource({ uri: r.uri })));
    const all = outputs.join('\n');
    for (const h of held) {
      expect(all).not.toContain(h.id);
      expect(all).not.toContain(h.text);
    }
    // Adding a hidden item's own words makes an item of the agent's, with its own id: no error, no hint.
    const added = ok(await c.call('loki_checklist_set', { items: [{ text: held.find((h) => !h.check)!.text }] }));
    expect(added.changed).toEqual([expect.stringMatching(/^a-[0-9a-f]{8}$/)]);
    for (const h of held) expect(JSON.stringify(added)).not.toContain(h.id);
    // Claiming completion once the facts hold reveals them (the copy outside the project stays until acceptance,
    // for a rollback to before the reveal).
    const revealed = ok(await c.call('loki_council_convene'));
    expect(JSON.stringify(revealed)).toContain(held[0]!.id);
    expect(keptHeldOut(project()).sort()).toEqual(kept.sort());
  });

  it(
    'a rollback to before the reveal hides the set again, and the next reveal finds it intact',
    {
      timeout: 90_000,
    },
    async () => {
      const c = await started();
      await doTheWork(c);
      const cp = ok(await c.call('loki_checkpoint_create', { label: 'before the claim' })) as {
        checkpoint: { id: string };
      };
      ok(await c.call('loki_verify'));
      const first = ok(await c.call('loki_council_convene'));
      expect(first.heldOutToJudge).toHaveLength(1);
      ok(await c.call('loki_rollback', { target: cp.checkpoint.id, code: false }));
      const list = structured<{ items: Item[]; revealed: boolean }>(await c.call('loki_checklist_get'));
      expect(list.revealed).toBe(false);
      expect(list.items.map((i) => i.id)).not.toContain((first.heldOutToJudge as string[])[0]);
      ok(await c.call('loki_verify'));
      const again = ok(await c.call('loki_council_convene'));
      expect(again.heldOutToJudge).toEqual(first.heldOutToJudge);
      const reveals = dbRows<{ data: string }>(
        project().root,
        "SELECT data FROM audit WHERE action = 'checklist.reveal'",
      );
      expect(reveals).toHaveLength(2);
      for (const r of reveals) expect(JSON.parse(r.data)).not.toHaveProperty('setLost');
    },
  );

  it.each([
    ['removed', (file: string) => fs.rmSync(file)],
    [
      'changed',
      (file: string) => {
        const set = JSON.parse(fs.readFileSync(file, 'utf8')) as { ids: string[] };
        fs.writeFileSync(file, JSON.stringify({ ...set, ids: set.ids.slice(0, 1) }));
      },
    ],
  ])(
    'a held-out set %s outside the server costs more than it gains: every spec item is judged, the receipt says why',
    { timeout: 90_000 },
    async (how, tamper) => {
      const c = await started();
      const dir = path.join(project().home, 'held-out');
      const file = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith('.json'))!;
      tamper(path.join(dir, file));
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      const conv = ok(await c.call('loki_council_convene'));
      // Both spec items without a machine check, where the set held out one.
      expect(conv.heldOutToJudge).toHaveLength(2);
      expect((await council(c, ['approve', 'approve', 'approve'])).outcome).toBe('approved');
      const r = await complete(c);
      expect(r).toMatchObject({ status: 'COMPLETE', headline: 'VERIFIED WITH GAPS' });
      const receipt = fs.readFileSync(path.join(project().root, r.receipt!), 'utf8');
      expect(receipt).toMatch(
        new RegExp(
          `held-out set kept outside the project was ${how === 'removed' ? 'missing' : 'changed outside the server'}`,
        ),
      );
      const reveal = dbRows<{ data: string }>(
        project().root,
        "SELECT data FROM audit WHERE action = 'checklist.reveal'",
      );
      expect(JSON.parse(reveal[0]!.data)).toMatchObject({ setLost: expect.any(String) });
    },
  );
});

describe('voting', () => {
  it('three separate clients vote blind; none sees another vote before the tally', { timeout: 90_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    ok(await c.call('loki_verify'));
    const conv = ok(await c.call('loki_council_convene'));
    const members = [await open({}, 'member-1'), await open({}, 'member-2'), await open({}, 'member-3')];
    const answers: Record<string, unknown>[] = [];
    for (const [i, m] of members.entries()) {
      const r = await m.call('loki_council_vote', {
        council: conv.council,
        seat: i + 1,
        vote: i === 2 ? 'reject' : 'approve',
        rationale: `member ${i + 1} rationale text`,
        evidence: [`${conv.verification as string}:tests`],
        items: (conv.heldOutToJudge as string[]).map((id) => ({ id, met: true, note: '' })),
      });
      answers.push(ok(r));
      if (i < 2) {
        expect(r.structuredContent).toMatchObject({ outcome: 'voting', tally: null });
        // Nothing a member can call shows another member's vote before the tally.
        const seen = JSON.stringify([
          r,
          await m.call('loki_status'),
          await m.call('loki_checklist_get'),
          cli('council', 'verdicts'),
          cli('council', 'status', '--json'),
        ]);
        expect(seen).not.toMatch(/member \d rationale/);
        if (i === 1)
          expect(
            text(
              await m.call('loki_council_vote', {
                council: conv.council,
                seat: 1,
                vote: 'reject',
                rationale: 'voting twice on seat one',
                evidence: [`${conv.verification as string}`],
              }),
            ),
          ).toMatch(/seat 1 of council k001 has already voted; votes are final/);
      }
    }
    expect(answers[2]).toMatchObject({ outcome: 'approved', cast: 3 });
    // A seat votes once; a closed council takes no more votes.
    expect(
      text(
        await members[0]!.call('loki_council_vote', {
          council: conv.council,
          seat: 1,
          vote: 'reject',
          rationale: 'changed my mind',
          evidence: [`${conv.verification as string}`],
        }),
      ),
    ).toMatch(/closed/);
    expect((await complete(c)).status).toBe('COMPLETE');
  });

  it(
    'refuses a vote that cites no fact, a seat that does not exist, and an approval that skips a held-out item',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      const conv = ok(await c.call('loki_council_convene'));
      const base = { council: conv.council, vote: 'approve', rationale: 'fine by me, really' };
      expect(text(await c.call('loki_council_vote', { ...base, seat: 1, evidence: ['it looks fine'] }))).toMatch(
        /does not start with a fact key/,
      );
      expect(
        text(await c.call('loki_council_vote', { ...base, seat: 7, evidence: [`${conv.verification as string}`] })),
      ).toMatch(/seat 7 does not exist/);
      expect(conv.heldOutToJudge).toHaveLength(1);
      expect(
        text(await c.call('loki_council_vote', { ...base, seat: 1, evidence: [`${conv.verification as string}`] })),
      ).toMatch(/must judge every held-out item/);
      expect(
        text(await c.call('loki_council_vote', { ...base, seat: 0, evidence: [`${conv.verification as string}`] })),
      ).toMatch(/only after a unanimous approval/);
    },
  );

  it(
    'the council waits for real progress, not for loki_status calls; a forced review needs none',
    { timeout: 60_000 },
    async () => {
      const c = await started({ LOKI_COUNCIL_MIN_ITERATIONS: '4' });
      // The baseline verified as it is: nothing built, no task done, so nothing to judge.
      write('src/sum.js', GOOD_SUM);
      ok(await c.call('loki_verify'));
      fs.rmSync(path.join(project().root, 'src/sum.js'));
      ok(await c.call('loki_verify'));
      expect(text(await c.call('loki_council_convene'))).toMatch(/nothing to judge yet/);
      expect(cli('council', 'force-review', 'the user wants a look').code).toBe(0);
      expect(text(await c.call('loki_status'))).toMatch(/forced review/);
      expect(text(await c.call('loki_council_convene'))).not.toMatch(/nothing to judge/);
      // Work done: the council convenes at once, however few turns were counted (minIterations no longer gates).
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      ok(await c.call('loki_council_convene'));
    },
  );
});

/** Turns count toward stagnation only in phases with code work: move past BOOTSTRAP (if the server has not). */
async function intoDevelopment(c: Connected): Promise<void> {
  const phase = async () =>
    structured<{ run: { phase: string } }>(await c.call('loki_status', { peek: true })).run.phase;
  if ((await phase()) === 'BOOTSTRAP') ok(await c.call('loki_phase_advance'));
  expect(await phase()).toBe('DEVELOPMENT');
}

describe('stagnation, the council CLI and what the server cannot know', () => {
  it(
    'no code change for the limit forces a review; for twice the limit the run stops as stagnated',
    { timeout: 60_000 },
    async () => {
      const c = await started({ LOKI_COUNCIL_STAGNATION_LIMIT: '2' });
      await intoDevelopment(c);
      write('src/sum.js', GOOD_SUM);
      const briefs: string[] = [];
      for (let i = 0; i < 5; i++) briefs.push(text(await c.call('loki_status')));
      expect(briefs[1]).not.toMatch(/forced review/);
      expect(briefs[2]).toMatch(/Next: loki_verify \{\} -- forced review \(no code change in 2 turns\)/);
      expect(cli('council', 'status')).toMatchObject({
        code: 0,
        out: expect.stringMatching(/Forced review pending: no code change in 2 turns/),
      });
      const last = structured<{ run: { status: string } }>(await c.call('loki_status', { peek: true }));
      expect(last.run.status).toBe('stopped');
      expect(briefs[4]).toMatch(/stagnated: no code change in 4 turns/);
      expect(text(await c.call('loki_complete'))).toMatch(/the run is stopped \(stagnated/);
    },
  );

  it('turns of a phase without code work (BOOTSTRAP) do not count toward stagnation', { timeout: 60_000 }, async () => {
    const c = await started({ LOKI_COUNCIL_STAGNATION_LIMIT: '2' });
    // Held in BOOTSTRAP by a task of its own (an empty phase is passed by itself).
    ok(await c.call('loki_task_add', { tasks: [{ title: 'read the spec again', phase: 'BOOTSTRAP' }] }));
    const phase = async () =>
      structured<{ run: { status: string; phase: string } }>(await c.call('loki_status', { peek: true }));
    if ((await phase()).run.phase !== 'BOOTSTRAP')
      ok(await c.call('loki_phase_advance', { to: 'BOOTSTRAP', reason: 'the spec changed' }));
    for (let i = 0; i < 5; i++) expect(text(await c.call('loki_status'))).not.toMatch(/forced review|stagnated/);
    expect((await phase()).run).toMatchObject({ status: 'active', phase: 'BOOTSTRAP' });
  });

  it('a code change resets the count', { timeout: 60_000 }, async () => {
    const c = await started({ LOKI_COUNCIL_STAGNATION_LIMIT: '2' });
    await intoDevelopment(c);
    for (let i = 0; i < 4; i++) {
      write('src/sum.js', `exports.sum = (a, b) => a + b; // ${i}\n`);
      expect(text(await c.call('loki_status'))).not.toMatch(/forced review/);
    }
  });

  it(
    'loki council verdicts hide votes until the tally, then show them; report shows the receipt',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      const conv = ok(await c.call('loki_council_convene'));
      ok(
        await c.call('loki_council_vote', {
          council: conv.council,
          seat: 1,
          vote: 'reject',
          rationale: 'the secret rationale of seat one',
          evidence: [`${conv.verification as string}`],
        }),
      );
      const hidden = cli('council', 'verdicts');
      expect(hidden.out).toMatch(/k001 voting \(1 vote\(s\) in, hidden until the tally\)/);
      expect(hidden.out).not.toContain('secret rationale');
      for (const seat of [2, 3])
        ok(
          await c.call('loki_council_vote', {
            council: conv.council,
            seat,
            vote: 'reject',
            rationale: `seat ${seat} says no, for reasons`,
            evidence: [`${conv.verification as string}`],
          }),
        );
      expect(cli('council', 'verdicts').out).toContain('the secret rationale of seat one');
      expect(cli('council', 'report').out).toMatch(/no receipt yet[\s\S]*k001: rejected/);
      expect(cli('council', 'bogus').code).toBe(2);
      expect(cli('proof', 'verify').code).toBe(1);
    },
  );

  it(
    'outside git and without a test command, completion says so: VERIFIED WITH GAPS in plain words',
    { timeout: 60_000 },
    async () => {
      use(tempProject({ files: { 'notes.txt': 'hello\n' } }));
      const c = await open();
      ok(await c.call('loki_start', { specText: '# Tiny\n\n- Write a greeting\n', tier: 'simple' }));
      ok(await c.call('loki_status'));
      fs.writeFileSync(path.join(project().root, 'greeting.txt'), 'hi\n');
      await finishTasks(c);
      await markManualItemsMet(c);
      const v = ok(await c.call('loki_verify'));
      expect(JSON.stringify(v.gaps)).toMatch(/No test command/);
      expect((await council(c, ['approve', 'approve', 'reject'])).outcome).toBe('approved');
      const r = await complete(c);
      expect(r, JSON.stringify(r.reasons)).toMatchObject({ status: 'COMPLETE', headline: 'VERIFIED WITH GAPS' });
      const runId = fs.readdirSync(path.join(project().root, '.loki', 'proofs'))[0]!;
      const receipt = fs.readFileSync(path.join(project().root, '.loki', 'proofs', runId, 'RECEIPT.md'), 'utf8');
      expect(receipt).toMatch(/^# VERIFIED WITH GAPS/);
      expect(receipt).toMatch(/not a git repository/);
      expect(receipt).toMatch(/No test command/);
      expect(cli('proof', 'verify')).toMatchObject({
        code: 0,
        out: expect.stringMatching(/no git baseline was recorded/),
      });
    },
  );
});

describe('the gate cannot be talked round', () => {
  it(
    'a verification with `only` leaves checks not run: completion and convening are refused',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify', { only: ['lint'] }));
      expect(text(await c.call('loki_council_convene'))).toMatch(/blocking finding/);
      expect((await complete(c)).reasons.join('\n')).toMatch(/did not run the tests/);
    },
  );

  it(
    'after the reveal the builder cannot waive, mark or re-check a held-out item, nor change a check the spec stated',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      const conv = ok(await c.call('loki_council_convene'));
      const held = (conv.heldOutToJudge as string[])[0]!;
      for (const edit of [
        { id: held, waive: 'not needed after all' },
        { id: held, check: { kind: 'file-exists', path: 'package.json' } },
        { id: held, status: 'met', evidence: 'it handles them fine' },
      ]) {
        expect(text(await c.call('loki_checklist_set', { items: [edit] }))).toMatch(
          /held-out item: its spec check or the council judges it/,
        );
      }
      const list = structured<{ items: Item[] }>(await c.call('loki_checklist_get'));
      const specCheck = list.items.find((i) => i.text === 'all tests pass')!;
      expect(text(await c.call('loki_checklist_set', { items: [{ id: specCheck.id, check: null }] }))).toMatch(
        /comes from the spec and cannot be changed/,
      );
    },
  );

  it(
    'a rejected council cannot simply be convened again on the same code; a checklist edit after the vote needs a new council',
    { timeout: 60_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      expect((await council(c, ['approve', 'approve', 'approve'], 'reject')).outcome).toBe('rejected');
      expect(text(await c.call('loki_council_convene'))).toMatch(/rejected this very code; change it/);
      write('src/sum.js', 'exports.sum = (a, b) => Number(a) + Number(b);\n');
      ok(await c.call('loki_verify'));
      expect((await council(c, ['approve', 'approve', 'reject'])).outcome).toBe('approved');
      ok(
        await c.call('loki_checklist_set', {
          items: [{ text: 'an afterthought the council never saw', waive: 'added after the vote, on purpose' }],
        }),
      );
      expect((await complete(c)).reasons.join('\n')).toMatch(/checklist changed after council k002 convened/);
    },
  );

  it('changing the checks or the council settings mid-run blocks completion', { timeout: 60_000 }, async () => {
    const c = await started();
    await doTheWork(c);
    fs.writeFileSync(
      path.join(project().root, '.loki', 'config.yaml'),
      'checks:\n  test: echo "5 passed, 0 failed"\n  timeoutSeconds: 60\ncouncil:\n  enabled: false\n',
    );
    ok(await c.call('loki_verify'));
    expect((await complete(c)).reasons.join('\n')).toMatch(
      /the checks or council settings changed since the run started/,
    );
  });

  it(
    'proof verify catches a forged manifest even with a matching line appended to the audit log',
    { timeout: 90_000 },
    async () => {
      const c = await started();
      await doTheWork(c);
      ok(await c.call('loki_verify'));
      await council(c, ['approve', 'approve', 'reject']);
      expect((await complete(c)).status).toBe('COMPLETE');
      const dir = path.join(project().root, '.loki', 'proofs');
      const runId = fs.readdirSync(dir)[0]!;
      const sha = (t: string) => crypto.createHash('sha256').update(t).digest('hex');
      const factsFile = path.join(dir, runId, 'FACTS.json');
      const forged = fs.readFileSync(factsFile, 'utf8').replace(/"passed": \d+/, '"passed": 99');
      fs.writeFileSync(factsFile, forged);
      const manifestFile = path.join(dir, runId, 'MANIFEST.json');
      const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Record<string, string> };
      manifest.files['FACTS.json'] = sha(forged);
      const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
      fs.writeFileSync(manifestFile, manifestText);
      const db = openDb(project().root, false);
      db.prepare(
        "INSERT INTO audit (seq, ts, actor, action, target, data, prev, hash) VALUES (999, '2026-01-01T00:00:00.000Z', 'forger', 'run.complete', ?, ?, 'x', 'y')",
      ).run(runId, JSON.stringify({ manifest: sha(manifestText) }));
      db.close();
      expect(cli('proof', 'verify')).toMatchObject({ code: 1, out: expect.stringMatching(/the audit log is broken/) });
    },
  );
});

describe('tests of the baseline removed for a stated reason', () => {
  // The baseline's tests could not run (no code yet), so what is measured is the assertions of its test file.
  const thinned = () =>
    write(
      'test/sum.test.js',
      TEST_FILE.replace(
        "test('negative', () => assert.strictEqual(sum(-2, -3), -5));",
        "test('negative', () => sum(-2, -3));",
      ),
    );
  const REASON = "merged the 'negative' check into 'adds'";

  it(
    'block until the agent says why; the council then judges the reason and the receipt shows it',
    {
      timeout: 90_000,
    },
    async () => {
      const c = await started();
      await doTheWork(c);
      thinned();
      const blocked = ok(await c.call('loki_verify')) as { blocking: { items: string[] } };
      expect(blocked.blocking.items).toEqual([
        expect.stringMatching(
          /^Test files of the baseline hold fewer assertions .*test\/sum\.test\.js \(2 -> 1\).* Restore what/,
        ),
      ]);
      expect(ok(await c.call('loki_complete')).status).toBe('CONTINUE');
      const v = ok(await c.call('loki_verify', { testRemovalReason: REASON })) as { blocking: { items: string[] } };
      expect(v.blocking.items).toEqual([]);
      // One brief at a time: the first seat's here, each vote's answer carries the next (council() votes them).
      const conv = ok(await c.call('loki_council_convene')) as { brief: { prompt: string } };
      expect(conv.brief.prompt).toContain('- TO JUDGE: Test files of the baseline hold fewer assertions');
      expect(conv.brief.prompt).toContain(REASON);
      expect((await council(c, ['approve', 'approve', 'approve'])).outcome).toBe('approved');
      const r = await complete(c);
      expect(r).toMatchObject({ status: 'COMPLETE', headline: 'VERIFIED WITH GAPS' });
      const receipt = fs.readFileSync(path.join(project().root, r.receipt!), 'utf8');
      expect(receipt).toMatch(
        /- Tests removed or thinned, accepted by council k001: .*sum\.test\.js \(2 -> 1\).*merged the 'negative' check/,
      );
    },
  );

  it('cannot be accepted with the council disabled', { timeout: 60_000 }, async () => {
    const c = await started({ LOKI_COUNCIL_ENABLED: 'false' });
    await doTheWork(c);
    thinned();
    ok(await c.call('loki_verify', { testRemovalReason: REASON }));
    const r = await complete(c);
    expect(r.status).toBe('CONTINUE');
    expect(r.reasons).toContainEqual(
      expect.stringMatching(/with the council disabled no one can accept the stated reason/),
    );
  });
});
