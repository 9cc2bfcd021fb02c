/**
 * Notification triggers (issue 21, item 6): the pure rules of domain/notify.ts at, below and above each threshold,
 * and end to end through the real SDK client: an alert shows in loki_status, is recorded once with its audit entry
 * and runs the user's notify.command once, not again on the next turn; an invalid threshold names the fix.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_THRESHOLDS,
  activeAlerts,
  newAlerts,
  repeatsAlert,
  type NotifyFacts,
  type NotifyThresholds,
} from '../mcp-server/src/domain/notify.js';
import { resolveConfig, typedConfig } from '../mcp-server/src/config/load.js';
import { statusCommand } from '../mcp-server/src/cli/status.js';
import { Project } from '../mcp-server/src/project.js';
import { renderBriefing } from '../mcp-server/src/tools/run.js';
import type { Briefing } from '../mcp-server/src/run/briefing.js';
import { connect, dbRows, structured, tempProject, text, type Connected, type TempProject } from './helpers.js';
import { closeAll, ok, open, project, started, write, GOOD_SUM, README } from './fixtures/sum-run.js';

const NONE: NotifyFacts = { context: null, budget: null, failedAttempts: 0, deadLetters: 0, council: null };
const alerts = (over: Partial<NotifyFacts>, t: Partial<NotifyThresholds> = {}) =>
  activeAlerts({ ...NONE, ...over }, { ...DEFAULT_THRESHOLDS, ...t });

describe('domain: which alerts hold', () => {
  it('none when nothing was measured or everything is under its threshold', () => {
    expect(alerts({})).toEqual([]);
    expect(
      alerts({
        context: { tokens: 159_999, window: 200_000 },
        budget: { spentUsd: 7.99, limitUsd: 10 },
        failedAttempts: 2,
        council: { id: 'k001', state: 'approved', reasons: [] },
      }),
    ).toEqual([]);
  });

  it('context: a warning at the threshold, critical from 95 %, against the window given', () => {
    const at = alerts({ context: { tokens: 160_000, window: 200_000 } });
    expect(at).toMatchObject([{ trigger: 'context', key: 'context:80', level: 'warning', value: 80, threshold: 80 }]);
    expect(at[0]!.message).toMatch(/context 80% full \(160000 of 200000 tokens\).*loki_memory_record/);
    expect(alerts({ context: { tokens: 190_000, window: 200_000 } })[0]).toMatchObject({
      key: 'context:95',
      level: 'critical',
    });
    // The same tokens in a bigger window are no alert; a threshold above 95 is critical under its own key.
    expect(alerts({ context: { tokens: 160_000, window: 1_000_000 } })).toEqual([]);
    expect(alerts({ context: { tokens: 193_000, window: 200_000 } }, { contextPct: 97 })).toEqual([]);
    expect(alerts({ context: { tokens: 196_000, window: 200_000 } }, { contextPct: 97 })[0]).toMatchObject({
      key: 'context:97',
      level: 'critical',
    });
  });

  it('budget: a warning at the threshold, critical at 100 %, and none without a limit', () => {
    expect(alerts({ budget: { spentUsd: 7.9, limitUsd: 10 } })).toEqual([]);
    const at = alerts({ budget: { spentUsd: 8, limitUsd: 10 } });
    expect(at).toMatchObject([{ trigger: 'budget', key: 'budget:10:80', level: 'warning', value: 80, threshold: 80 }]);
    expect(at[0]!.message).toMatch(/budget\.limitUsd/);
    const over = alerts({ budget: { spentUsd: 10.5, limitUsd: 10 } });
    expect(over).toMatchObject([{ key: 'budget:10:100', level: 'critical', value: 105 }]);
    expect(over[0]!.message).toMatch(/loki resume/);
    expect(alerts({ budget: { spentUsd: 5, limitUsd: 10 } }, { budgetPct: 50 })[0]!.key).toBe('budget:10:50');
    // A raised limit makes reaching it a new occurrence: the alert fires again.
    expect(alerts({ budget: { spentUsd: 20, limitUsd: 20 } })[0]!.key).toBe('budget:20:100');
    expect(alerts({ budget: { spentUsd: 0, limitUsd: 0 } })[0]).toMatchObject({ level: 'critical' });
  });

  it('task failures: the count at the threshold warns; any dead-letter is critical, keyed by how many', () => {
    expect(alerts({ failedAttempts: 2 })).toEqual([]);
    expect(alerts({ failedAttempts: 3 })).toMatchObject([
      { trigger: 'task-failures', key: 'task-failures:3', level: 'warning', value: 3, threshold: 3 },
    ]);
    expect(alerts({ failedAttempts: 7 })[0]!.key).toBe('task-failures:3');
    expect(alerts({ failedAttempts: 1 }, { taskFailures: 1 })[0]!.key).toBe('task-failures:1');
    const dead = alerts({ failedAttempts: 1, deadLetters: 2 });
    expect(dead).toMatchObject([{ key: 'task-failures:dead-letter:2', level: 'critical', value: 2 }]);
    expect(dead[0]!.message).toMatch(/loki tasks --status dead-letter/);
  });

  it('council: a rejection alerts under its own id, unless turned off; other outcomes do not', () => {
    const rejected = { id: 'k003', state: 'rejected', reasons: ['the README is missing'] };
    expect(alerts({ council: rejected })).toMatchObject([
      { trigger: 'council-rejected', key: 'council-rejected:k003', level: 'warning', value: null, threshold: null },
    ]);
    expect(alerts({ council: rejected })[0]!.message).toMatch(/k003 rejected completion \(the README is missing\)/);
    expect(alerts({ council: rejected }, { councilRejection: false })).toEqual([]);
    expect(alerts({ council: { id: 'k004', state: 'voting', reasons: [] } })).toEqual([]);
  });

  it('keys are stable, so an alert already fired is not new', () => {
    const facts: Partial<NotifyFacts> = {
      context: { tokens: 170_000, window: 200_000 },
      budget: { spentUsd: 9, limitUsd: 10 },
      failedAttempts: 4,
      council: { id: 'k001', state: 'rejected', reasons: [] },
    };
    const a = alerts(facts);
    expect(a.map((x) => x.trigger)).toEqual(['context', 'budget', 'task-failures', 'council-rejected']);
    expect(alerts(facts).map((x) => x.key)).toEqual(a.map((x) => x.key));
    expect(newAlerts(a, ['context:80', 'budget:10:80'])).toEqual(a.slice(2));
    // Stepping up to critical is a new occurrence.
    const worse = alerts({ ...facts, context: { tokens: 195_000, window: 200_000 } });
    expect(
      newAlerts(
        worse,
        a.map((x) => x.key),
      ).map((x) => x.key),
    ).toEqual(['context:95']);
  });
});

describe('the compact text', () => {
  it('shows each alert on one line, and a hook notice saying the same thing not again', () => {
    const budget = alerts({ budget: { spentUsd: 10.5, limitUsd: 10 } });
    const notice = 'budget reached: $10.50 spent of $10 (LOKI_BUDGET_LIMIT); the run is paused';
    expect(repeatsAlert(notice, budget)).toBe(true);
    expect(repeatsAlert('context is 85% full: record what matters', budget)).toBe(false);
    expect(repeatsAlert('1 task(s) in dead-letter: review them', budget)).toBe(false);
    const b = {
      project: '/p',
      run: null,
      signals: { pause: false, stop: false, humanInput: { status: 'none' } },
      budget: { limitUsd: null, spentUsd: null, note: '' },
      queue: null,
      trust: null,
      alerts: budget,
      problems: [notice, 'something else'],
      next: 'call loki_status',
      nextCall: null,
    } as unknown as Briefing;
    const lines = renderBriefing(b).split('\n');
    expect(lines.filter((l) => l.startsWith('Alert'))).toEqual([`Alert critical: ${budget[0]!.message}`]);
    expect(lines.filter((l) => l.startsWith('Problem'))).toEqual(['Problem: something else']);
  });
});

describe('config: the notify settings', () => {
  it('defaults, config.yaml and LOKI_* overrides', () => {
    const d = typedConfig(resolveConfig(undefined, {}));
    expect(d.notify).toEqual({ contextPct: 80, budgetPct: 80, taskFailures: 3, councilRejection: true, command: null });
    expect(d.contextWindowTokens).toBe(200_000);
    const c = resolveConfig('notify:\n  budgetPct: 50\n  command: echo hi\ncontext:\n  windowTokens: 1000000\n', {
      LOKI_NOTIFY_COUNCIL_REJECTION: 'false',
      LOKI_NOTIFY_TASK_FAILURES: '5',
    });
    expect(c.problems).toEqual([]);
    const t = typedConfig(c);
    expect(t.notify).toMatchObject({ budgetPct: 50, command: 'echo hi', councilRejection: false, taskFailures: 5 });
    expect(t.contextWindowTokens).toBe(1_000_000);
  });

  it('an invalid threshold names the setting and the fix', () => {
    expect(resolveConfig('notify:\n  contextPct: 150\n', {}).problems).toEqual([
      '.loki/config.yaml: notify.contextPct must be at most 100, got 150',
    ]);
    expect(resolveConfig(undefined, { LOKI_NOTIFY_TASK_FAILURES: '0' }).problems[0]).toMatch(
      /LOKI_NOTIFY_TASK_FAILURES="0": notify\.taskFailures must be at least 1, got 0; unset it or set a valid value/,
    );
  });
});

// ---- through the protocol ----------------------------------------------------------------------------------

const SPEC = '# Notes app\n\n## Features\n- Add a note\n- List notes\n- Delete a note\n';
let own: { p: TempProject; c: Connected } | undefined;

afterEach(async () => {
  if (own) {
    await own.c.close();
    own.p.cleanup();
    own = undefined;
  }
  await closeAll();
});

/** Lines the notify command appended to `file`, once the expected number is there (the command is detached). */
async function linesOf(file: string, expected: number, tries = 400): Promise<string[]> {
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  for (let i = 0; i < tries && read().length < expected; i++) await new Promise((r) => setTimeout(r, 25));
  return read();
}

/** The command writing each alert it is run for as one line: trigger, level, and that the project dir is set. */
const command = (file: string) =>
  `printf '%s %s %s\\n' "$LOKI_ALERT_TRIGGER" "$LOKI_ALERT_LEVEL" "$([ -d "$LOKI_PROJECT_DIR/.loki" ] && echo dir)" >> '${file}'`;

interface Fired {
  runId: string;
  fired: { key: string; trigger: string; level: string }[];
}

function firedOf(root: string): Fired[] {
  return dbRows<{ body: string }>(root, "SELECT body FROM docs WHERE kind = 'notify'").map(
    (r) => JSON.parse(r.body) as Fired,
  );
}

const auditOf = (root: string) =>
  dbRows<{ data: string }>(root, "SELECT data FROM audit WHERE action = 'notify.fired' ORDER BY seq");

describe('through the protocol', () => {
  it(
    'failed attempts reaching notify.taskFailures: shown in loki_status, recorded and run once',
    { timeout: 60_000 },
    async () => {
      const p = tempProject({ git: true });
      const out = path.join(p.root, '..', 'alerts.txt');
      fs.mkdirSync(path.join(p.root, '.loki'));
      fs.writeFileSync(
        path.join(p.root, '.loki', 'config.yaml'),
        `notify:\n  taskFailures: 2\n  command: ${JSON.stringify(command(out))}\n`,
      );
      const c = await connect(p);
      own = { p, c };
      ok(await c.call('loki_start', { specText: SPEC, tier: 'simple' }));
      for (let i = 0; i < 2; i++) {
        const claim = structured<{ task: { id: string }; token: string }>(
          await c.call('loki_task_claim', { agent: 'builder' }),
        );
        ok(await c.call('loki_task_fail', { id: claim.task.id, token: claim.token, error: `broke ${i}` }));
      }
      const first = await c.call('loki_status');
      expect(text(first)).toMatch(/^Alert warning: 2 failed task attempts \(notify\.taskFailures 2\)/m);
      expect(structured<{ alerts: { key: string }[] }>(first).alerts.map((a) => a.key)).toEqual(['task-failures:2']);
      expect(await linesOf(out, 1)).toEqual(['task-failures warning dir']);

      // The next turn still shows it, but it is not fired again.
      expect(text(await c.call('loki_status'))).toMatch(/^Alert warning: 2 failed/m);
      expect(text(await c.call('loki_status', { peek: true }))).toMatch(/^Alert warning: 2 failed/m);
      const fired = firedOf(p.root);
      expect(fired).toHaveLength(1);
      expect(fired[0]!.fired.map((f) => f.key)).toEqual(['task-failures:2']);
      const audit = auditOf(p.root);
      expect(audit).toHaveLength(1);
      expect(JSON.parse(audit[0]!.data)).toMatchObject({ alerts: [{ key: 'task-failures:2', level: 'warning' }] });
      // Give a second, wrongly fired command the time to have written, then check the file once more.
      await linesOf(out, 2, 20);
      expect(await linesOf(out, 1)).toEqual(['task-failures warning dir']);
    },
  );

  it('a command that fails (here: not found) never fails loki_status', { timeout: 60_000 }, async () => {
    const p = tempProject({ git: true });
    fs.mkdirSync(path.join(p.root, '.loki'));
    fs.writeFileSync(
      path.join(p.root, '.loki', 'config.yaml'),
      'notify:\n  taskFailures: 1\n  command: /nonexistent/notifier --now\n',
    );
    const c = await connect(p);
    own = { p, c };
    ok(await c.call('loki_start', { specText: SPEC, tier: 'simple' }));
    const claim = structured<{ task: { id: string }; token: string }>(
      await c.call('loki_task_claim', { agent: 'builder' }),
    );
    ok(await c.call('loki_task_fail', { id: claim.task.id, token: claim.token, error: 'broke' }));
    const r = await c.call('loki_status');
    expect(r.isError).toBeFalsy();
    expect(text(r)).toMatch(/^Alert warning: 1 failed task attempts/m);
    expect(firedOf(p.root)[0]!.fired.map((f) => f.key)).toEqual(['task-failures:1']);
  });

  it('a council rejection fires once, and shows in loki_status and `loki status`', { timeout: 90_000 }, async () => {
    const c = await started();
    const out = path.join(project().root, '..', 'alerts.txt');
    fs.appendFileSync(
      path.join(project().root, '.loki', 'config.yaml'),
      `notify:\n  command: ${JSON.stringify(command(out))}\n`,
    );
    write('src/sum.js', GOOD_SUM);
    write('README.md', README);
    let claim = structured<{ task: { id: string } | null; token: string }>(
      await c.call('loki_task_claim', { agent: 'builder' }),
    );
    while (claim.task) {
      ok(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'done' }));
      claim = structured(await c.call('loki_task_claim', { agent: 'builder' }));
    }
    ok(await c.call('loki_verify'));
    const conv = ok(await c.call('loki_council_convene'));
    const id = conv.council as string;
    const evidence = [`${conv.verification as string}:tests node --test is green`];
    const held = conv.heldOutToJudge as string[];
    let last: Record<string, unknown> = {};
    for (const seat of [1, 2, 3])
      last = ok(
        await c.call('loki_council_vote', {
          council: id,
          seat,
          vote: 'reject',
          rationale: `seat ${seat} found the README thin`,
          evidence,
          items: held.map((h) => ({ id: h, met: false, note: 'not shown' })),
        }),
      );
    expect(last.outcome).toBe('rejected');

    const status = await c.call('loki_status');
    expect(text(status)).toMatch(new RegExp(`^Alert warning: council ${id} rejected completion`, 'm'));
    expect(text(status)).not.toMatch(/^Next:.*Alert/m);
    expect(await linesOf(out, 1)).toEqual(['council-rejected warning dir']);
    ok(await c.call('loki_status'));
    expect(firedOf(project().root)[0]!.fired.map((f) => f.key)).toEqual([`council-rejected:${id}`]);
    expect(auditOf(project().root)).toHaveLength(1);

    // Another client's look (peek) and `loki status` show it without firing it.
    const other = await open({}, 'watcher');
    expect(text(await other.call('loki_status', { peek: true }))).toMatch(/^Alert warning: council/m);
    const cli = new Project({ root: project().root, env: project().env, actor: 'cli:test' });
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      expect(await statusCommand(cli, false)).toBe(0);
    } finally {
      spy.mockRestore();
      cli.close();
    }
    expect(written.join('')).toMatch(new RegExp(`^Alert +warning: council ${id} rejected completion`, 'm'));
    await linesOf(out, 2, 20);
    expect(await linesOf(out, 1)).toEqual(['council-rejected warning dir']);
  });

  it('an invalid threshold in config.yaml is the config error naming the fix', { timeout: 60_000 }, async () => {
    const p = tempProject({ git: true });
    fs.mkdirSync(path.join(p.root, '.loki'));
    fs.writeFileSync(path.join(p.root, '.loki', 'config.yaml'), 'notify:\n  budgetPct: 0\n');
    const c = await connect(p);
    own = { p, c };
    const r = await c.call('loki_start', { specText: SPEC, tier: 'simple' });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/\.loki\/config\.yaml: notify\.budgetPct must be at least 1, got 0/);
    expect(text(await c.call('loki_status'))).toMatch(/Problem: \.loki\/config\.yaml: notify\.budgetPct must be/);
  });
});
