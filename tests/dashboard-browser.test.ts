/**
 * The dashboard in a real browser (Chromium through playwright-core) against the built `loki dashboard`, while a
 * real run moves through the real MCP server on the same project: every page shows the run, updates without a
 * reload when the run changes, and every control works and is stored (files, audit entries as the person's
 * action). A read-only token is refused with the server's message; a project without a run shows the empty
 * states; a phone-sized window keeps the body from scrolling sideways. Screenshots of each page go to
 * tests/artifacts/dashboard/ (CI keeps them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DIST,
  REPO_ROOT,
  auditLines,
  connect,
  reach,
  structured,
  tempProject,
  text,
  type Connected,
  type TempProject,
} from './helpers.js';
import { GOOD_SUM, HELD_OUT_SEED, README, SPEC, TEST_FILE } from './fixtures/sum-run.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'tests', 'artifacts', 'dashboard');
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) {
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: CI must run the dashboard's browser tests`);
  console.warn(`dashboard-browser: skipped, ${CHROMIUM} is missing (apt-get install chromium)`);
}

interface Served {
  proc: ChildProcess;
  base: string;
  operator: string;
  read: string;
}

/** `loki dashboard --port 0` on the project, as a person starts it; its printed address and tokens. */
async function serve(p: TempProject, port = '0'): Promise<Served> {
  const proc = spawn(process.execPath, [path.join(DIST, 'loki.js'), 'dashboard', '--port', port], {
    cwd: p.root,
    env: p.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await vi.waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`loki dashboard exited ${proc.exitCode}: ${out}`);
      expect(out).toMatch(/Read-only token \S+/);
    },
    { timeout: 15_000, interval: 50 },
  );
  const open = /Open\s+(http:\/\/\S+)#token=(\S+)/.exec(out)!;
  return { proc, base: open[1]!, operator: open[2]!, read: /Read-only token (\S+)/.exec(out)![1]! };
}

/**
 * Ctrl-C, as a person stops it: the dashboard ends at once with 0, event streams open or not (SIGKILL after 5 s,
 * and the test fails).
 */
async function stop(s: Served | undefined): Promise<void> {
  if (!s || s.proc.exitCode !== null) return;
  const gone = new Promise<void>((resolve) => s.proc.once('exit', () => resolve()));
  s.proc.kill('SIGINT');
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    s.proc.kill('SIGKILL');
  }, 5000);
  await gone;
  clearTimeout(timer);
  if (killed) throw new Error('loki dashboard did not end within 5 s of SIGINT');
  expect(s.proc.exitCode).toBe(0);
}

function ok(r: Awaited<ReturnType<Connected['call']>>): Record<string, unknown> {
  expect(r.isError, text(r)).toBeFalsy();
  return r.structuredContent as Record<string, unknown>;
}

/** Poll until `check` passes (the page updates on its own; nothing here reloads it). */
const until = (check: () => unknown, timeout = 10_000) => vi.waitFor(check, { timeout, interval: 100 });

async function go(page: Page, route: string, testid: string): Promise<void> {
  await page.locator(`[data-testid="nav-${route}"]`).click();
  await page.getByTestId(testid).waitFor({ timeout: 10_000 });
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function entries(root: string, action: string): Record<string, unknown>[] {
  return auditLines(root).filter((e) => e.action === action);
}

/** The entry was the person's, through this dashboard. */
function byPersonViaDashboard(e: Record<string, unknown> | undefined): void {
  expect(e).toBeDefined();
  expect(String(e!.actor)).toMatch(/^person:/);
  expect(String(e!.actor)).toContain('via dashboard:');
}

describe.skipIf(!hasChromium)('the dashboard in a browser', () => {
  let p: TempProject;
  let c: Connected;
  let dash: Served;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const lokiFile = (name: string) => path.join(p.root, '.loki', name);

  beforeAll(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    p = tempProject({
      git: true,
      files: {
        'package.json': JSON.stringify({ name: 'sum', private: true, scripts: { test: 'node --test' } }),
        'test/sum.test.js': TEST_FILE,
        '.gitignore': 'node_modules\n',
      },
    });
    fs.mkdirSync(path.join(p.root, '.loki'));
    fs.writeFileSync(
      lokiFile('config.yaml'),
      'checks:\n  test: node --test\n  timeoutSeconds: 60\nbudget:\n  limitUsd: 1\n',
    );
    // One failed attempt dead-letters a task, so the queue shows one.
    c = await connect(p, { LOKI_HELD_OUT_SEED: HELD_OUT_SEED, LOKI_MAX_RETRIES: '1' }, 'builder');
    ok(await c.call('loki_start', { specText: SPEC, tier: 'simple' }));
    ok(await c.call('loki_status'));
    const launched = await Promise.all([
      serve(p),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
    [dash, browser] = launched;
    ctx = await browser.newContext({ viewport: LAPTOP });
    page = await ctx.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
  });

  afterAll(async () => {
    await browser?.close();
    await stop(dash);
    await c?.close();
    p?.cleanup();
  });

  it('takes the token from the address, drops it from the URL, and shows the live run', async () => {
    await page.goto(`${dash.base}#token=${dash.operator}`);
    await page.getByTestId('page-overview').waitFor();
    expect(page.url()).not.toContain('token');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
    await until(async () => expect(await page.getByTestId('live').getAttribute('data-state')).toBe('live'));
    const runId = structured<{ run: { runId: string } }>(await c.call('loki_status', { peek: true })).run.runId;
    expect(await page.getByTestId('run-id').textContent()).toBe(runId);
    expect(await page.getByTestId('phase').textContent()).toBe('DEVELOPMENT');
    expect(await page.getByTestId('tier').textContent()).toBe('simple');
    expect(await page.getByTestId('phase-BOOTSTRAP').getAttribute('data-state')).toBe('done');
    expect(await page.getByTestId('phase-DEVELOPMENT').getAttribute('data-state')).toBe('current');
    expect(await page.getByTestId('phase-QA').getAttribute('data-state')).toBe('next');
    expect(await page.getByTestId('budget-gauge').textContent()).toContain('Budget');
    expect(await page.getByTestId('context-gauge').textContent()).toContain('not measured');
    expect(await page.getByTestId('next').textContent()).toMatch(/loki_/);
    expect(await page.getByTestId('session').count()).toBeGreaterThan(0);
    // The iteration moves when the agent takes a turn, without a reload.
    const before = (await page.getByTestId('iteration').textContent())!;
    expect(before).toMatch(/^\d+ of 1000$/);
    ok(await c.call('loki_status'));
    await until(async () => expect(await page.getByTestId('iteration').textContent()).not.toBe(before));
  });

  it('shows the spend and the context the Claude Code hooks measure, with their timeline and alert', async () => {
    // The usage hook, as Claude Code runs it after each tool call, reading a transcript that grows.
    const transcript = path.join(p.root, '..', 'transcript.jsonl');
    fs.writeFileSync(transcript, '');
    for (const [i, context] of [24_000, 51_000, 88_000, 126_000, 170_000].entries()) {
      const usage = { input_tokens: 4000, cache_read_input_tokens: context - 4000, output_tokens: 2500 };
      fs.appendFileSync(
        transcript,
        `${JSON.stringify({ type: 'assistant', message: { id: `m${i}`, model: 'claude-sonnet-4-5', usage } })}\n`,
      );
      const r = spawnSync(process.execPath, [path.join(DIST, 'loki-hook.cjs'), 'post-tool-use'], {
        input: JSON.stringify({ cwd: p.root, transcript_path: transcript, tool_name: 'Bash' }),
        env: p.env,
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
    }
    await until(async () => expect(await page.getByTestId('context-gauge').textContent()).toContain('170k of 200k'));
    expect(await page.getByTestId('budget-gauge').textContent()).toMatch(/\$0\.\d\d of \$1\.00/);
    expect(await page.locator('[data-testid="timeline"] polyline.line-ctx').count()).toBe(1);
    await until(async () => expect(await page.getByTestId('alert').first().textContent()).toMatch(/context/i));
    await shot(page, 'overview-usage');
  });

  it('shows tasks as they are added, claimed, failed and dead-lettered, and filters by state', async () => {
    await go(page, 'tasks', 'tasks-table');
    expect(await page.getByTestId('task-t1').textContent()).toContain('Add a sum function');
    ok(
      await c.call('loki_task_add', {
        tasks: [{ id: 'flaky', title: 'Fetch the docs site', phase: 'DEVELOPMENT', priority: 'critical' }],
      }),
    );
    await page.getByTestId('task-flaky').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('task-flaky').getAttribute('data-status')).toBe('pending');
    // Claimed: the lease holder shows. Failed once: dead-letter (limits.maxRetries 1), with its error.
    const claim = structured<{ task: { id: string }; token: string }>(
      await c.call('loki_task_claim', { agent: 'builder' }),
    );
    expect(claim.task.id).toBe('flaky');
    await until(async () => expect(await page.getByTestId('task-flaky').textContent()).toContain('builder'));
    ok(await c.call('loki_task_fail', { id: 'flaky', token: claim.token, error: 'the docs site is down' }));
    await until(async () =>
      expect(await page.getByTestId('task-flaky').getAttribute('data-status')).toBe('dead-letter'),
    );
    expect(await page.getByTestId('task-flaky').getAttribute('class')).toContain('dead');
    expect(await page.getByTestId('task-flaky').getByTestId('last-error').textContent()).toBe('the docs site is down');
    await page.getByTestId('filter-dead-letter').click();
    await until(async () => expect(await page.locator('[data-testid^="task-"][data-status]').count()).toBe(1));
    await shot(page, 'tasks');
    await page.getByTestId('filter-all').click();
    await until(async () => expect(await page.getByTestId('task-t1').count()).toBe(1));
  });

  it('follows the phase as the agent works, with the activity feed', async () => {
    await go(page, 'overview', 'page-overview');
    fs.mkdirSync(path.join(p.root, 'src'), { recursive: true });
    fs.writeFileSync(path.join(p.root, 'src/sum.js'), GOOD_SUM);
    fs.writeFileSync(path.join(p.root, 'README.md'), README);
    ok(await c.call('loki_task_update', { id: 'flaky', action: 'retry' }));
    for (;;) {
      const claim = structured<{ task: { id: string } | null; token: string }>(
        await c.call('loki_task_claim', { agent: 'builder' }),
      );
      if (!claim.task) break;
      ok(await c.call('loki_task_complete', { id: claim.task.id, token: claim.token, summary: 'done' }));
    }
    expect((await reach(c, 'QA')).ok).toBe(true);
    await until(async () => expect(await page.getByTestId('phase').textContent()).toBe('QA'));
    expect(await page.getByTestId('phase-DEVELOPMENT').getAttribute('data-state')).toBe('done');
    expect(await page.getByTestId('phase-QA').getAttribute('data-state')).toBe('current');
    await until(async () =>
      expect(await page.locator('[data-testid="activity-item"][data-type="task-completed"]').count()).toBeGreaterThan(
        0,
      ),
    );
    expect(await page.locator('[data-testid="activity-item"][data-type="phase"]').first().textContent()).toContain(
      'QA',
    );
  });

  it('shows the verification with its checks, verdicts and test counts', async () => {
    ok(await c.call('loki_verify'));
    await go(page, 'verification', 'page-verification');
    const test = page.getByTestId('check-test').first();
    expect(await test.getAttribute('data-verdict')).toBe('pass');
    expect(await test.textContent()).toContain('node --test');
    expect(await test.getByTestId('test-counts').textContent()).toBe('2 passed, 0 failed, 0 skipped');
    expect(await page.getByTestId('check-build').first().getAttribute('data-verdict')).toBe('absent');
  });

  it('pauses, resumes and forces a review from the overview, recorded as the person via the dashboard', async () => {
    await go(page, 'overview', 'controls');
    await page.getByTestId('control-pause').click();
    await until(async () => expect(await page.getByTestId('control-result').textContent()).toMatch(/^Paused/));
    expect(fs.existsSync(lokiFile('PAUSE'))).toBe(true);
    byPersonViaDashboard(entries(p.root, 'signal.pause').at(-1));
    await until(async () => expect(await page.getByTestId('signal-pause').getAttribute('data-on')).toBe('true'));
    await shot(page, 'overview-paused');

    await page.getByTestId('control-resume').click();
    await until(async () => expect(await page.getByTestId('control-result').textContent()).toMatch(/^Resumed/));
    expect(fs.existsSync(lokiFile('PAUSE'))).toBe(false);
    byPersonViaDashboard(entries(p.root, 'signal.resume').at(-1));
    await until(async () => expect(await page.getByTestId('signal-pause').getAttribute('data-on')).toBe('false'));

    await page.getByTestId('control-force-review').click();
    await page.getByTestId('review-reason').fill('the person wants a second look');
    await page.getByTestId('review-confirm').click();
    await until(async () =>
      expect(await page.getByTestId('control-result').textContent()).toMatch(/convene the council/),
    );
    const forced = entries(p.root, 'council.force-review').at(-1);
    byPersonViaDashboard(forced);
    expect(forced!.data).toMatchObject({ reason: 'the person wants a second look' });
    await go(page, 'council', 'forced-review');
    expect(await page.getByTestId('forced-review').textContent()).toContain('the person wants a second look');
  });

  it('a read-only token sees the run with its controls disabled, and the server refuses its control', async () => {
    const viewer = await browser.newContext({ viewport: LAPTOP });
    try {
      const vp = await viewer.newPage();
      await vp.goto(`${dash.base}#token=${dash.read}`);
      await vp.getByTestId('controls').waitFor();
      const audit = auditLines(p.root).length;
      // The status says the token's scope: the controls are disabled from the start, with the reason.
      await vp.getByTestId('read-only').waitFor();
      expect(await vp.getByTestId('control-pause').isDisabled()).toBe(true);
      expect(await vp.getByTestId('control-stop').isDisabled()).toBe(true);
      // And the server refuses the control itself, whoever asks with that token.
      const refused = await vp.evaluate(async (token) => {
        const r = await fetch('/api/control/pause', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '{}',
        });
        return { status: r.status, body: (await r.json()) as { error: string } };
      }, dash.read);
      expect(refused).toEqual({
        status: 403,
        body: { error: 'this token is read-only: controls need the operator token' },
      });
      expect(fs.existsSync(lokiFile('PAUSE'))).toBe(false);
      expect(auditLines(p.root).length).toBe(audit);
      // It still sees the run.
      expect(await vp.getByTestId('phase').textContent()).toBe('QA');
    } finally {
      await viewer.close();
    }
  });

  it('waives a visible checklist item after asking why', async () => {
    await go(page, 'checklist', 'page-checklist');
    const item = structured<{
      items: { id: string; text: string; heldOut: boolean; check: unknown; status: string }[];
    }>(await c.call('loki_checklist_get')).items.find((i) => !i.heldOut && !i.check && i.status === 'open')!;
    expect(item.text).toBe('sum(0, 0) is 0');
    const row = page.getByTestId(`item-${item.id}`);
    expect(await row.getAttribute('data-held-out')).toBe('false');
    await page.getByTestId(`waive-${item.id}`).click();
    expect(await page.getByTestId('waive-confirm').isDisabled()).toBe(true);
    await page.getByTestId('waive-reason').fill('covered by the adds test: 0 + 0 is the identity case');
    await page.getByTestId('waive-confirm').click();
    await until(async () =>
      expect(await page.getByTestId('control-result').textContent()).toContain(`Waived ${item.id}`),
    );
    const waived = entries(p.root, 'run.waive').at(-1);
    byPersonViaDashboard(waived);
    expect(waived!.data).toMatchObject({ items: [item.id] });
    await until(async () => expect(await row.getAttribute('data-status')).toBe('waived'));
    await page.getByTestId('waiver-w001').waitFor();
    expect(await page.getByTestId('waiver-w001').textContent()).toContain('covered by the adds test');
  });

  it('rolls back to a checkpoint once its id is typed', async () => {
    const made = structured<{ checkpoint: { id: string } }>(
      await c.call('loki_checkpoint_create', { label: 'before the council', reason: 'a point to come back to' }),
    ).checkpoint.id;
    await go(page, 'checkpoints', 'page-checkpoints');
    await page.getByTestId(`checkpoint-${made}`).waitFor({ timeout: 10_000 });
    await page.getByTestId(`rollback-${made}`).click();
    const confirm = page.getByTestId('rollback-confirm');
    expect(await confirm.isDisabled()).toBe(true);
    await page.getByTestId('rollback-confirm-id').fill('cp-0');
    expect(await confirm.isDisabled()).toBe(true);
    await page.getByTestId('rollback-confirm-id').fill(made);
    await confirm.click();
    await until(async () =>
      expect(await page.getByTestId('control-result').textContent()).toContain(`Rolled back to ${made}`),
    );
    const rolled = entries(p.root, 'checkpoint.rollback').at(-1);
    byPersonViaDashboard(rolled);
    expect(JSON.stringify(rolled)).toContain(made);
    // The checkpoint taken just before the rollback (to undo it) appears.
    const undo = /roll back to (cp-\d+)/.exec((await page.getByTestId('control-result').textContent())!)![1]!;
    await page.getByTestId(`checkpoint-${undo}`).waitFor({ timeout: 10_000 });
  });

  it('shows the council as it convenes and votes, the devil’s advocate marked', async () => {
    await go(page, 'council', 'page-council');
    ok(await c.call('loki_verify'));
    const conv = ok(await c.call('loki_council_convene'));
    const id = conv.council as string;
    const evidence = [`${conv.verification as string}:tests node --test is green`];
    const held = conv.heldOutToJudge as string[];
    ok(
      await c.call('loki_council_vote', {
        council: id,
        seat: 1,
        vote: 'approve',
        rationale: 'seat 1 judged the facts',
        evidence,
        items: held.map((h) => ({ id: h, met: true, note: 'checked' })),
      }),
    );
    // Before the tally the votes stay hidden.
    await page.getByTestId(`council-${id}`).getByTestId('votes-hidden').waitFor({ timeout: 10_000 });
    let last: Record<string, unknown> = {};
    for (const seat of [2, 3])
      last = ok(
        await c.call('loki_council_vote', {
          council: id,
          seat,
          vote: 'approve',
          rationale: `seat ${seat} judged the facts`,
          evidence,
          items: held.map((h) => ({ id: h, met: true, note: 'checked' })),
        }),
      );
    expect(last.outcome).toBe('devils-advocate');
    ok(
      await c.call('loki_council_vote', {
        council: id,
        seat: 0,
        vote: 'approve',
        rationale: 'tried to break it and could not',
        evidence,
      }),
    );
    const card = page.getByTestId(`council-${id}`);
    await until(async () => expect(await card.getByTestId('council-state').textContent()).toBe('approved'));
    expect(await card.locator('[data-testid^="vote-"]').count()).toBe(4);
    expect(await card.getByTestId('vote-0').getAttribute('data-devil')).toBe('true');
    expect(await card.getByTestId('vote-0').getByTestId('devils-advocate').count()).toBe(1);
    expect(await card.getByTestId('vote-2').textContent()).toContain('seat 2 judged the facts');
    // Convening took the forced review.
    await until(async () => expect(await page.getByTestId('forced-review').count()).toBe(0));
  });

  it('lists the receipt once the run completes, with its text and its check', async () => {
    const r = ok(await c.call('loki_complete'));
    expect(r.status, JSON.stringify(r.reasons)).toBe('COMPLETE');
    await go(page, 'receipts', 'page-receipts');
    const runId = String(r.runId);
    await page.getByTestId(`receipt-${runId}`).click();
    await page.getByTestId('receipt-text').waitFor();
    expect(await page.getByTestId('receipt-text').textContent()).toMatch(/^# VERIFIED/);
    // The check runs when asked (it snapshots the tree with git), not on every change.
    expect(await page.getByTestId('receipt-check').count()).toBe(0);
    await page.getByTestId('receipt-check-run').click();
    await until(async () => expect(await page.getByTestId('receipt-check').getAttribute('data-ok')).toBe('true'));
    expect(page.url()).toContain(`#/receipts/${runId}`);
  });

  it('finds what the agent recorded in memory', async () => {
    ok(
      await c.call('loki_memory_record', {
        layer: 'episode',
        title: 'sum handles negative numbers',
        outcome: 'success',
        lessons: ['node --test runs test/*.test.js'],
      }),
    );
    // With no words, the newest memories.
    await go(page, 'memory', 'memory-newest');
    expect(await page.getByTestId('memory-newest').textContent()).toContain('sum handles negative numbers');
    await page.getByTestId('memory-query').fill('negative');
    await page.getByTestId('memory-search').click();
    await until(async () =>
      expect(await page.getByTestId('memory-results').textContent()).toContain('sum handles negative numbers'),
    );
    expect(page.url()).toContain('#/memory/negative');
  });

  it('pages through the audit log and verifies its chain', async () => {
    // More than one page (50 entries) of log.
    for (let i = auditLines(p.root).length; i <= 55; i++)
      ok(
        await c.call('loki_memory_record', {
          layer: 'episode',
          title: `note ${i}`,
          outcome: 'success',
          lessons: ['x'],
        }),
      );
    await go(page, 'audit', 'page-audit');
    await page.getByTestId('audit').waitFor();
    const count = auditLines(p.root).length;
    const newest = count - 1;
    await page.getByTestId(`audit-${newest}`).waitFor({ timeout: 10_000 });
    expect(await page.getByTestId(`audit-${newest - 50}`).count()).toBe(0);
    await page.getByTestId('audit-older').click();
    await page.getByTestId(`audit-${newest - 50}`).waitFor();
    expect(await page.getByTestId(`audit-${newest}`).count()).toBe(0);
    await page.getByTestId('audit-newer').click();
    await page.getByTestId(`audit-${newest}`).waitFor();
    await page.getByTestId('audit-verify-button').click();
    await until(async () => expect(await page.getByTestId('audit-verify-result').getAttribute('data-ok')).toBe('true'));
    expect(await page.getByTestId('audit-verify-result').textContent()).toMatch(/^OK: \d+ entries/);
  });

  it('stops the run after a confirmation', async () => {
    await go(page, 'overview', 'controls');
    await page.getByTestId('control-stop').click();
    await page.getByTestId('stop-confirm').click();
    await until(async () => expect(await page.getByTestId('control-result').textContent()).toMatch(/^Stop requested/));
    expect(fs.existsSync(lokiFile('STOP'))).toBe(true);
    byPersonViaDashboard(entries(p.root, 'signal.stop').at(-1));
    await until(async () => expect(await page.getByTestId('signal-stop').getAttribute('data-on')).toBe('true'));
  });

  it('screenshots every page of the run, and the overview on a phone without sideways scrolling', async () => {
    for (const [route, testid] of [
      ['overview', 'page-overview'],
      ['tasks', 'page-tasks'],
      ['verification', 'page-verification'],
      ['checklist', 'page-checklist'],
      ['council', 'page-council'],
      ['memory/negative', 'memory-results'],
      ['checkpoints', 'page-checkpoints'],
      ['audit', 'audit'],
      ['receipts', 'receipt'],
    ] as const) {
      await page.goto(`${dash.base}#/${route}${route === 'receipts' ? `/${encodeURIComponent(await runIdOf())}` : ''}`);
      await page.getByTestId(testid).waitFor();
      await shot(page, route.replace(/\/.*/, ''));
    }
    const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    try {
      const pp = await phone.newPage();
      await pp.goto(`${dash.base}#token=${dash.operator}`);
      await pp.getByTestId('page-overview').waitFor();
      const widths = await pp.evaluate(() => {
        const nav = document.querySelector('[data-testid="nav"]')!;
        return {
          body: document.body.scrollWidth,
          doc: document.documentElement.scrollWidth,
          viewport: window.innerWidth,
          navScroll: nav.scrollWidth,
          navClient: nav.clientWidth,
        };
      });
      expect(widths.body).toBeLessThanOrEqual(widths.viewport);
      expect(widths.doc).toBeLessThanOrEqual(widths.viewport);
      // The nav scrolls sideways within itself.
      expect(widths.navClient).toBeLessThanOrEqual(widths.viewport);
      expect(widths.navScroll).toBeGreaterThan(widths.navClient);
      expect(await pp.getByTestId('nav-overview').isVisible()).toBe(true);
      await shot(pp, 'overview-phone');
      await pp.locator('[data-testid="nav-tasks"]').click();
      await pp.getByTestId('tasks-table').waitFor();
      expect(await pp.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await shot(pp, 'tasks-phone');
    } finally {
      await phone.close();
    }
  });

  async function runIdOf(): Promise<string> {
    return structured<{ run: { runId: string } }>(await c.call('loki_status', { peek: true })).run.runId;
  }
});

describe.skipIf(!hasChromium)('the dashboard of a project without a run', () => {
  let p: TempProject;
  let dash: Served;
  let browser: Browser;

  beforeAll(async () => {
    p = tempProject({ git: true });
    [dash, browser] = await Promise.all([
      serve(p),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await stop(dash);
    p?.cleanup();
  });

  it('asks for a token without one, and refuses a wrong one with the server’s message', async () => {
    const ctx = await browser.newContext({ viewport: LAPTOP });
    try {
      const page = await ctx.newPage();
      await page.goto(dash.base);
      await page.getByTestId('token-form').waitFor();
      await page.getByTestId('token-input').fill('not-the-token');
      await page.getByTestId('token-submit').click();
      await until(async () =>
        expect(await page.getByTestId('token-problem').textContent()).toMatch(/token is required/),
      );
      await shot(page, 'token');
      await page.getByTestId('token-input').fill(dash.operator);
      await page.getByTestId('token-submit').click();
      await page.getByTestId('page-overview').waitFor();
    } finally {
      await ctx.close();
    }
  });

  it('shows "reconnecting" while the dashboard is down and goes live again when it is back', async () => {
    const ctx = await browser.newContext({ viewport: LAPTOP });
    try {
      const page = await ctx.newPage();
      await page.goto(`${dash.base}#token=${dash.operator}`);
      const live = page.getByTestId('live');
      await until(async () => expect(await live.getAttribute('data-state')).toBe('live'));
      const port = new URL(dash.base).port;
      await stop(dash);
      await until(async () => expect(await live.getAttribute('data-state')).toBe('reconnecting'));
      expect(await live.textContent()).toBe('reconnecting');
      // The same port and LOKI_HOME: the same address and tokens.
      dash = await serve(p, port);
      await until(async () => expect(await live.getAttribute('data-state')).toBe('live'), 20_000);
      await page.getByTestId('empty-run').waitFor();
    } finally {
      await ctx.close();
    }
  });

  it('shows an empty state on every page', async () => {
    const ctx = await browser.newContext({ viewport: LAPTOP });
    try {
      const page = await ctx.newPage();
      await page.goto(`${dash.base}#token=${dash.operator}`);
      for (const [route, testid] of [
        ['overview', 'empty-run'],
        ['tasks', 'empty-run'],
        ['verification', 'empty-run'],
        ['checklist', 'empty-run'],
        ['council', 'empty-run'],
        ['memory', 'memory-prompt'],
        ['checkpoints', 'checkpoints-empty'],
        ['audit', 'audit-empty'],
        ['receipts', 'receipts-empty'],
      ] as const) {
        await page.locator(`[data-testid="nav-${route}"]`).click();
        await page.getByTestId(testid).waitFor({ timeout: 10_000 });
        expect(await page.getByTestId('main').getAttribute('data-page')).toBe(route);
        if (testid === 'empty-run') expect(await page.getByTestId(testid).textContent()).toContain('loki run prd.md');
        if (route === 'overview') await shot(page, 'empty');
      }
      await page.getByTestId('nav-memory').click();
      await page.getByTestId('memory-query').fill('anything at all');
      await page.getByTestId('memory-search').click();
      await page.getByTestId('memory-empty').waitFor({ timeout: 10_000 });
      // Looking changed nothing: the project still has no run state.
      expect(fs.existsSync(path.join(p.root, '.loki', 'loki.db'))).toBe(false);
    } finally {
      await ctx.close();
    }
  });
});
