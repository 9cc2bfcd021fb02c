/**
 * The tests that ran at the run's baseline, by id: run once, at the first verification that runs the tests, on a
 * clean room of the baseline snapshot with the baseline's own test command (so a test script changed since
 * cannot narrow what the baseline is said to have run), counted from the runner's report. Every later
 * verification compares its own report with it: a baseline test that no longer runs, for any reason (deleted,
 * renamed out of the runner's glob, emptied, filtered by a name pattern, skipped by any spelling), is a blocking
 * fact (verify/findings.ts).
 */
import type { ConfiguredChecks } from '../domain/checks.js';
import type { TestReport } from '../domain/test-runners.js';
import { treeOf } from '../run/git.js';
import type { RunState } from '../run/records.js';
import { readFileIfExists } from '../store/fsx.js';
import { SafeDir } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { projectChecks, runCheck } from './checks.js';
import { BASELINE_TESTS_RECORD, baselineTestsFile, type BaselineTests, type VerificationRecord } from './record.js';
import { openCleanRoom } from './room.js';

const MAX_MANIFEST_BYTES = 1024 * 1024;

/** Why there is nothing to compare when the baseline had no test command (a new project): no gap, just so. */
export const NO_BASELINE_COMMAND = 'the baseline had no test command';
/** The start of the reason when the baseline's test command ran no tests: nothing to compare either. */
export const NO_BASELINE_TESTS = "the baseline's test command ran no tests";

/** True when the baseline simply had no tests (no gap to report); false when they could not be counted. */
export const hadNoTests = (b: BaselineTests): boolean =>
  b.why === NO_BASELINE_COMMAND || (b.why ?? '').startsWith(NO_BASELINE_TESTS);
/** Ids listed in a verification record; the count says how many there were. */
const MAX_LISTED_IDS = 100;

/** The baseline's tests, from the record, or run now and recorded (null: no git baseline). */
export async function baselineTests(
  store: Store,
  run: RunState,
  checks: ConfiguredChecks,
  timeoutSeconds: number,
  env: NodeJS.ProcessEnv,
): Promise<BaselineTests | null> {
  const file = baselineTestsFile(run.runId);
  const kept = store.records.read(file, BASELINE_TESTS_RECORD);
  if (kept) return kept;
  const root = store.project.root;
  if (!run.git.baselineCommit) return null;
  const tree = treeOf(root, run.git.baselineCommit);
  if (!tree) return null;
  const record = await runOnBaseline(root, run.runId, tree, checks, timeoutSeconds, env);
  return store.mutate(
    () =>
      store.records.create(file, BASELINE_TESTS_RECORD, record)
        ? record
        : store.records.read(file, BASELINE_TESTS_RECORD)!,
    (r) =>
      r === record
        ? {
            action: 'verify.baseline',
            target: run.runId,
            data: {
              tree: r.tree,
              available: r.available,
              why: r.why,
              runner: r.runner,
              ran: r.ran.length,
              skipped: r.skipped,
            },
          }
        : undefined,
  );
}

async function runOnBaseline(
  root: string,
  runId: string,
  tree: string,
  configured: ConfiguredChecks,
  timeoutSeconds: number,
  env: NodeJS.ProcessEnv,
): Promise<BaselineTests> {
  const none = (why: string): BaselineTests => ({
    runId,
    tree,
    at: new Date().toISOString(),
    available: false,
    why,
    runner: null,
    resolved: null,
    ran: [],
    skipped: 0,
  });
  const room = openCleanRoom(root, tree);
  try {
    const where = SafeDir.open(room.dir);
    const checks = projectChecks(where, configured);
    const test = checks.find((c) => c.name === 'test')!;
    if (test.command === null) return none(NO_BASELINE_COMMAND);
    // The build first, as a verification runs it (tests of built output, `node --test dist/`, need it); its
    // outcome is not the point here.
    const build = checks.find((c) => c.name === 'build')!;
    if (build.command !== null) await runCheck(build, { cwd: where.root, timeoutSeconds, env, only: ['build'] });
    const fact = await runCheck(test, {
      cwd: where.root,
      timeoutSeconds,
      env,
      only: ['test'],
      reports: {
        dir: room.reports,
        packageJson: readFileIfExists(where, 'package.json', MAX_MANIFEST_BYTES)?.toString('utf8'),
      },
    });
    if (!fact.report)
      return {
        ...none(
          fact.runner?.unverified
            ? `the baseline's test runner could not be identified (${fact.runner.unverified})`
            : `the baseline's tests gave no report (${fact.runner?.reportError ?? fact.reason})`,
        ),
        runner: fact.runner?.name ?? null,
        resolved: fact.runner?.resolved ?? null,
      };
    const ran = fact.report.tests.filter((t) => t.outcome !== 'skipped' && !t.whole).map((t) => t.id);
    // Zero tests at the baseline (a test command over a folder the build had not made yet, say) is nothing to
    // compare with, and the record says so rather than comparing against an empty list.
    if (ran.length === 0)
      return {
        ...none(`the baseline's test command ran no tests (${fact.runner?.resolved ?? test.command})`),
        runner: fact.runner?.name ?? null,
      };
    return {
      runId,
      tree,
      at: new Date().toISOString(),
      available: true,
      why: null,
      runner: fact.runner?.name ?? null,
      resolved: fact.runner?.resolved ?? null,
      // A file that did not load at the baseline (the code it tests not written yet) is no test that ran.
      ran,
      skipped: fact.report.tests.filter((t) => t.outcome === 'skipped').length,
    };
  } finally {
    room.close();
  }
}

/**
 * The baseline tests that did not run now (null: nothing to compare: no baseline record or no report now). A
 * test file git sees as renamed keeps its tests: their ids move with it (a rename out of the runner's glob still
 * leaves them not running).
 */
export function testsGone(
  baseline: BaselineTests | null,
  now: TestReport | undefined,
  changed: VerificationRecord['diff']['files'],
): VerificationRecord['testsGone'] {
  if (!baseline?.available || !now) return null;
  const renamed = new Map(changed.filter((f) => f.status === 'R' && f.from).map((f) => [f.from!, f.path]));
  const moved = (id: string) => {
    const at = id.indexOf('::');
    const to = at > 0 ? renamed.get(id.slice(0, at)) : undefined;
    return to ? `${to}${id.slice(at)}` : id;
  };
  const ranNow = new Set(now.tests.filter((t) => t.outcome !== 'skipped').map((t) => t.id));
  const gone = baseline.ran.filter((id) => !ranNow.has(moved(id)));
  return {
    ids: gone.slice(0, MAX_LISTED_IDS),
    count: gone.length,
    baselineRan: baseline.ran.length,
    nowRan: ranNow.size,
  };
}
