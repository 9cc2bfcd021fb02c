/**
 * The project's checks: which commands (config, else detected from the manifests, read through the store's path
 * validator) and running each one into a check fact.
 */
import {
  CHECK_NAMES,
  PROBE_FILES,
  detectChecks,
  resolveChecks,
  type CheckName,
  type ConfiguredChecks,
  type ProjectProbe,
  type ResolvedCheck,
} from '../domain/checks.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { scrubText } from '../domain/secrets.js';
import { planTestRun, readReport, type PlanResult, type TestPlan, type TestReport } from '../domain/test-runners.js';
import type { TestCounts } from '../domain/test-output.js';
import { judgeTests, parseTestCounts } from '../domain/test-output.js';
import { listNames, readFileIfExists } from '../store/fsx.js';
import { type SafeDir } from '../store/paths.js';
import { outputTail, runCommand, type CommandResult } from './command.js';
import type { CheckFact } from './record.js';
import { FileTooLargeError, PathError } from '../errors.js';

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Read what detection needs. A manifest that is a link, a special file or too large counts as absent. */
export function probeProject(project: SafeDir): ProjectProbe {
  const files: ProjectProbe['files'] = {};
  for (const name of PROBE_FILES) {
    const text = tolerate(() => readFileIfExists(project, name, MAX_MANIFEST_BYTES)?.toString('utf8'));
    if (text !== undefined) files[name] = text;
  }
  const pythonTestFiles = ['tests', 'test'].some((dir) =>
    (tolerate(() => listNames(project, dir)) ?? []).some((n) => /^test_.*\.py$|_test\.py$/.test(n)),
  );
  return { files, pythonTestFiles };
}

function tolerate<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof PathError || err instanceof FileTooLargeError) return undefined;
    throw err;
  }
}

export function projectChecks(project: SafeDir, configured: ConfiguredChecks): ResolvedCheck[] {
  return resolveChecks(configured, detectChecks(probeProject(project)));
}

export interface CheckRunOptions {
  cwd: string;
  timeoutSeconds: number;
  env: NodeJS.ProcessEnv;
  only: readonly CheckName[];
  /**
   * A private folder outside `cwd` for the runner's report (verify/room.ts), and the text of package.json as the
   * checks see it; without a folder the tests are counted from their output.
   */
  reports?: { dir: string; packageJson: string | undefined };
}

const notRun = (c: ResolvedCheck, verdict: CheckFact['verdict'], reason: string): CheckFact => ({
  name: c.name,
  verdict,
  reason,
  // A command may carry a credential (`TOKEN=... npm test`): the record keeps it scrubbed.
  command: c.command === null ? null : scrubText(c.command).text,
  source: c.source,
  from: c.from,
  exitCode: null,
  signal: null,
  timedOut: false,
  durationMs: null,
  tests: null,
  outputTail: '',
  outputBytes: 0,
});

/** The fact of a command that ran, before its verdict: how it ended and the tail of its output. */
function ranFact(c: ResolvedCheck, r: CommandResult): CheckFact {
  return {
    ...notRun(c, 'fail', ''),
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    durationMs: r.durationMs,
    outputTail: outputTail(r.output),
    outputBytes: r.outputBytes,
  };
}

export async function runCheck(c: ResolvedCheck, opts: CheckRunOptions): Promise<CheckFact & { report?: TestReport }> {
  if (!opts.only.includes(c.name)) return notRun(c, 'not-run', `left out by only: ${opts.only.join(', ')}`);
  if (c.command === null) {
    if (c.name !== 'test')
      return notRun(
        c,
        'absent',
        `no ${c.name} command (${c.from}); set checks.${c.name} in .loki/config.yaml if the project has one`,
      );
    return notRun(
      c,
      'unknown',
      c.source === 'config'
        ? `no test command: ${c.from}; set checks.test in .loki/config.yaml`
        : 'no test command: set checks.test in .loki/config.yaml',
    );
  }
  if (c.name === 'test') return runTests(c, c.command, opts);
  const r = await runCommand(c.command, { cwd: opts.cwd, timeoutMs: opts.timeoutSeconds * 1000, env: opts.env });
  const base = ranFact(c, r);
  if (r.spawnError) return { ...base, reason: `could not start: ${r.spawnError}` };
  if (r.timedOut) return { ...base, reason: `timed out after ${opts.timeoutSeconds} s` };
  if (r.exitCode === null) return { ...base, reason: `killed by ${r.signal ?? 'a signal'}` };
  if (r.exitCode !== 0)
    return { ...base, reason: `exited with code ${r.exitCode}${r.exitCode === 127 ? ' (command not found)' : ''}` };
  return { ...base, verdict: 'pass', reason: 'exited 0' };
}

/** The checks asked for, deduplicated, in the order they run. */
export function normaliseOnly(only: readonly CheckName[] | undefined): CheckName[] {
  return only ? CHECK_NAMES.filter((n) => only.includes(n)) : [...CHECK_NAMES];
}

/** Reports larger than this are not read (a suite of 100,000 tests writes well under it). */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;

/**
 * The tests, counted from the report the runner itself wrote to a file named fresh for this check
 * (domain/test-runners.ts), not from output the tested code can print. A runner the server cannot identify
 * runs as configured and is counted from its output, and the fact says why (a gap).
 */
async function runTests(
  c: ResolvedCheck,
  command: string,
  opts: CheckRunOptions,
): Promise<CheckFact & { report?: TestReport }> {
  const reportFile = opts.reports
    ? path.join(opts.reports.dir, `tests-${crypto.randomBytes(8).toString('hex')}.report`)
    : null;
  const planned: PlanResult = reportFile
    ? planTestRun(command, { 'package.json': opts.reports!.packageJson }, reportFile)
    : { unverified: 'the checks ran outside a clean room', resolved: command };
  const plan = 'plan' in planned ? planned.plan : null;
  const r = await runCommand(plan ? plan.command : command, {
    cwd: opts.cwd,
    timeoutMs: opts.timeoutSeconds * 1000,
    env: plan ? planEnv(opts.env, plan, opts.cwd) : opts.env,
  });
  const shownRan = scrubText(plan ? plan.command.split(reportFile!).join('<report>') : command).text;
  const base = ranFact(c, r);
  const runner = {
    name: plan?.runner ?? null,
    ran: shownRan,
    resolved: scrubText('plan' in planned ? planned.plan.resolved : planned.resolved).text,
    counted: plan ? ('report' as const) : ('output' as const),
    unverified: 'unverified' in planned ? planned.unverified : null,
    reportError: null as string | null,
  };
  if (r.spawnError) return { ...base, runner, reason: `could not start: ${r.spawnError}` };
  let tests: TestCounts | null;
  let report: TestReport | undefined;
  if (plan) {
    const text = readReportFile(reportFile!);
    const parsed = text === null ? { error: 'the runner wrote no report' } : readReport(plan.runner, text, opts.cwd);
    if ('error' in parsed) {
      runner.reportError = parsed.error;
      tests = null;
    } else {
      report = parsed;
      tests = parsed.counts;
    }
  } else tests = parseTestCounts(r.output);
  const j = judgeTests(
    { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, timeoutSeconds: opts.timeoutSeconds },
    tests,
  );
  const reason =
    runner.reportError && j.verdict === 'inconclusive'
      ? `exited 0, but the runner's report could not be read (${runner.reportError})`
      : j.reason;
  return { ...base, verdict: j.verdict, reason, tests, runner, ...(report ? { report } : {}) };
}

/** The environment of a planned run: the plan's variables, and node_modules/.bin first on PATH for a script. */
function planEnv(env: NodeJS.ProcessEnv, plan: TestPlan, cwd: string): NodeJS.ProcessEnv {
  const out = { ...env, ...plan.env };
  if (plan.binPath) out.PATH = [path.join(cwd, 'node_modules', '.bin'), env.PATH].filter(Boolean).join(path.delimiter);
  return out;
}

/** The report file's text; null when it is missing, not a regular file or too large. */
function readReportFile(file: string): string | null {
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile() || st.size > MAX_REPORT_BYTES) return null;
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
