/**
 * Test facts from the runner's own report: planTestRun over many script spellings (planned and unverified), the
 * report parsers on good and broken reports, and real runs of node:test, vitest, jest, mocha, pytest and cargo in
 * temporary projects whose tests print fake summaries that must not change the counts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quote } from 'shell-quote';
import { afterAll, describe, expect, it } from 'vitest';
import {
  planTestRun,
  readReport,
  type PlanResult,
  type RunnerName,
  type TestPlan,
  type TestReport,
} from '../mcp-server/src/domain/test-runners.js';
import { parseTestCounts } from '../mcp-server/src/domain/test-output.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const F = '/tmp/loki run/report-1';
const pkg = (scripts: Record<string, string>) => ({ 'package.json': JSON.stringify({ scripts }) });
/** The node:test reporter is a long data: URL; the table shows it as <node-reporter>. */
const shown = (command: string) =>
  command.replace(/--test-reporter\\*=data\\*:text\/javascript\\*;base64\\*,[A-Za-z0-9+/]+(\\*=)*/g, '<node-reporter>');

type Row =
  | { cmd: string; manifests?: Parameters<typeof planTestRun>[1]; runner: RunnerName; run: string; resolved: string }
  | { cmd: string; manifests?: Parameters<typeof planTestRun>[1]; why: RegExp; resolved: string };

const NODE = `--test-reporter=spec --test-reporter-destination=stdout <node-reporter> '--test-reporter-destination=${F}'`;
const VITEST = `--reporter=default --reporter=json '--outputFile.json=${F}'`;
const JEST = `--json '--outputFile=${F}'`;
const MOCHA = `--reporter json --reporter-option 'output=${F}'`;

const PLANNED: Row[] = [
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest' }),
    runner: 'vitest',
    run: `npm exec -c "vitest run ${VITEST}"`,
    resolved: 'npm test -> vitest',
  },
  {
    cmd: 'npm run test',
    manifests: pkg({ test: 'vitest run --coverage' }),
    runner: 'vitest',
    run: `npm exec -c "vitest run ${VITEST} --coverage"`,
    resolved: 'npm run test -> vitest run --coverage',
  },
  {
    cmd: 'npm run-script test',
    manifests: pkg({ test: 'jest' }),
    runner: 'jest',
    run: `npm exec -c "jest ${JEST}"`,
    resolved: 'npm run-script test -> jest',
  },
  {
    cmd: 'npm t',
    manifests: pkg({ test: 'vitest watch' }),
    runner: 'vitest',
    run: `npm exec -c "vitest run ${VITEST}"`,
    resolved: 'npm t -> vitest watch',
  },
  {
    cmd: 'pnpm test',
    manifests: pkg({ test: 'vitest --reporter=verbose --outputFile.json x.json' }),
    runner: 'vitest',
    run: `npm exec -c "vitest run ${VITEST}"`,
    resolved: 'pnpm test -> vitest --reporter=verbose --outputFile.json x.json',
  },
  {
    cmd: 'yarn test',
    manifests: pkg({ test: 'jest --json --watchAll' }),
    runner: 'jest',
    run: `npm exec -c "jest ${JEST}"`,
    resolved: 'yarn test -> jest --json --watchAll',
  },
  {
    cmd: 'npm test -- --runInBand t/a.test.js',
    manifests: pkg({ test: 'jest --ci' }),
    runner: 'jest',
    run: `npm exec -c "jest ${JEST} --ci --runInBand t/a.test.js"`,
    resolved: 'npm test -- --runInBand t/a.test.js -> jest --ci --runInBand t/a.test.js',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'tsc -p . && node --test --test-reporter=tap dist/' }),
    runner: 'node:test',
    run: `npm exec -c "tsc -p . && node --test ${NODE} dist/"`,
    resolved: 'npm test -> tsc -p . && node --test --test-reporter=tap dist/',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'npm run unit', unit: 'CI=1 mocha -R dot "test/**/*.spec.js"' }),
    runner: 'mocha',
    run: `npm exec -c "CI=1 mocha ${MOCHA} test/\\\\*\\\\*/\\\\*.spec.js"`,
    resolved: 'npm test -> npm run unit -> CI=1 mocha -R dot test/\\*\\*/\\*.spec.js',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ pretest: 'npm run build', build: 'tsc', test: 'node --test' }),
    runner: 'node:test',
    run: `npm exec -c "tsc && node --test ${NODE}"`,
    resolved: 'npm test -> npm run build && node --test -> tsc && node --test',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'NODE_OPTIONS=--experimental-vm-modules npx jest' }),
    runner: 'jest',
    run: `npm exec -c "NODE_OPTIONS=--experimental-vm-modules npx jest ${JEST}"`,
    resolved: 'npm test -> NODE_OPTIONS=--experimental-vm-modules npx jest',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'node --experimental-vm-modules node_modules/jest/bin/jest.js -i' }),
    runner: 'jest',
    run: `npm exec -c "node --experimental-vm-modules node_modules/jest/bin/jest.js ${JEST} -i"`,
    resolved: 'npm test -> node --experimental-vm-modules node_modules/jest/bin/jest.js -i',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'cross-env NODE_ENV=test jest --ci' }),
    runner: 'jest',
    run: `npm exec -c "cross-env NODE_ENV=test jest ${JEST} --ci"`,
    resolved: 'npm test -> cross-env NODE_ENV=test jest --ci',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'yarn vitest run' }),
    runner: 'vitest',
    run: `npm exec -c "yarn vitest run ${VITEST}"`,
    resolved: 'npm test -> yarn vitest run',
  },
  {
    cmd: 'pnpm exec vitest run',
    runner: 'vitest',
    run: `pnpm exec vitest run ${VITEST}`,
    resolved: 'pnpm exec vitest run',
  },
  {
    cmd: 'npx --no-install mocha --reporter dot --reporter-options a=b',
    runner: 'mocha',
    run: `npx --no-install mocha ${MOCHA}`,
    resolved: 'npx --no-install mocha --reporter dot --reporter-options a=b',
  },
  {
    cmd: 'node --test test/*.test.mjs',
    runner: 'node:test',
    run: `node --test ${NODE} test/*.test.mjs`,
    resolved: 'node --test test/*.test.mjs',
  },
  {
    cmd: 'node --import tsx --test-reporter dot --test --watch test/',
    runner: 'node:test',
    run: `node --import tsx --test ${NODE} test/`,
    resolved: 'node --import tsx --test-reporter dot --test --watch test/',
  },
  {
    cmd: 'c8 --reporter=lcov node --test',
    runner: 'node:test',
    run: `c8 --reporter=lcov node --test ${NODE}`,
    resolved: 'c8 --reporter=lcov node --test',
  },
  { cmd: 'pytest', runner: 'pytest', run: `pytest '--junitxml=${F}'`, resolved: 'pytest' },
  {
    cmd: 'python -m pytest -q --junitxml=old.xml tests/',
    runner: 'pytest',
    run: `python -m pytest '--junitxml=${F}' -q tests/`,
    resolved: 'python -m pytest -q --junitxml=old.xml tests/',
  },
  {
    cmd: 'python3 -B -m pytest -x',
    runner: 'pytest',
    run: `python3 -B -m pytest '--junitxml=${F}' -x`,
    resolved: 'python3 -B -m pytest -x',
  },
  {
    cmd: 'poetry run pytest',
    runner: 'pytest',
    run: `poetry run pytest '--junitxml=${F}'`,
    resolved: 'poetry run pytest',
  },
  { cmd: 'go test -v ./...', runner: 'go', run: `go test -json -v ./... > '${F}'`, resolved: 'go test -v ./...' },
  {
    cmd: 'cargo test --workspace -- --nocapture --test-threads=1',
    runner: 'cargo',
    run: `cargo test --no-fail-fast --workspace -- --test-threads=1 -Z unstable-options --format json > '${F}'`,
    resolved: 'cargo test --workspace -- --nocapture --test-threads=1',
  },
  {
    cmd: 'cargo +stable t --message-format json',
    runner: 'cargo',
    run: `cargo +stable t --no-fail-fast -- -Z unstable-options --format json > '${F}'`,
    resolved: 'cargo +stable t --message-format json',
  },
];

const UNVERIFIED: Row[] = [
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest run | tee log' }),
    why: /^package.json script "test" pipes its output \(`vitest run \| tee log`\)$/,
    resolved: 'npm test -> vitest run | tee log',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest > /dev/null' }),
    why: /script "test" redirects output/,
    resolved: 'npm test -> jest > /dev/null',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest 2>&1' }),
    why: /redirects output/,
    resolved: 'npm test -> jest 2>&1',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest || true' }),
    why: /carries on after a failure with \|\|/,
    resolved: 'npm test -> jest || true',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest run; exit 0' }),
    why: /one after another with ;/,
    resolved: 'npm test -> vitest run; exit 0',
  },
  { cmd: 'npm test', manifests: pkg({ test: 'jest &' }), why: /in the background/, resolved: 'npm test -> jest &' },
  {
    cmd: 'npm test',
    manifests: pkg({ test: '(cd pkg && jest)' }),
    why: /subshell/,
    resolved: 'npm test -> (cd pkg && jest)',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest $(cat args)' }),
    why: /command substitution/,
    resolved: 'npm test -> jest $(cat args)',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest run `cat files`' }),
    why: /command substitution/,
    resolved: 'npm test -> vitest run `cat files`',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest run $FILTER' }),
    why: /shell variable \(\$FILTER\)/,
    resolved: 'npm test -> vitest run $FILTER',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest\nnode x.js' }),
    why: /spans several lines/,
    resolved: 'npm test -> jest\nnode x.js',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'echo "Tests 12 passed (12)"' }),
    why: /^the test script runs `echo 'Tests 12 passed \(12\)'`, which prints text/,
    resolved: "npm test -> echo 'Tests 12 passed (12)'",
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'tsc && printf "ok 1\\n" && vitest run' }),
    why: /runs `printf/,
    resolved: "npm test -> tsc && printf 'ok 1\\n' && vitest run",
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'node scripts/test.mjs' }),
    why: /runs no test runner the server knows .*`node scripts\/test.mjs`/,
    resolved: 'npm test -> node scripts/test.mjs',
  },
  { cmd: 'make test', why: /runs `make test`: the server cannot read the results of make/, resolved: 'make test' },
  { cmd: 'bun test', why: /cannot read the results of bun/, resolved: 'bun test' },
  { cmd: 'cargo nextest run', why: /cargo-nextest/, resolved: 'cargo nextest run' },
  {
    cmd: 'sh -c "vitest run"',
    why: /runs `sh -c 'vitest run'`, which runs commands the server cannot see/,
    resolved: 'sh -c "vitest run"',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'vitest run && node --test' }),
    why: /more than one runner \(`vitest run`, `node --test`\)/,
    resolved: 'npm test -> vitest run && node --test',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest && eslint .' }),
    why: /runs `eslint \.` after the runner, which could change its report/,
    resolved: 'npm test -> jest && eslint .',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'jest', posttest: 'node fix-report.js' }),
    why: /runs `node fix-report.js` after the runner/,
    resolved: 'npm test -> jest && node fix-report.js',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'npm test' }),
    why: /script "test" calls itself/,
    resolved: 'npm test -> npm test',
  },
  {
    cmd: 'npm test',
    manifests: pkg({ test: 'npm run a', a: 'npm run b', b: 'npm run a' }),
    why: /script "a" calls itself \(test -> a -> b -> a\)/,
    resolved: 'npm test -> npm run a -> npm run b -> npm run a',
  },
  { cmd: 'npm test', why: /no package.json/, resolved: 'npm test' },
  { cmd: 'npm test', manifests: { 'package.json': '{ nope' }, why: /not valid JSON/, resolved: 'npm test' },
  { cmd: 'npm run unit', manifests: pkg({ test: 'jest' }), why: /no script "unit"/, resolved: 'npm run unit' },
  {
    cmd: 'npm test --coverage',
    manifests: pkg({ test: 'jest' }),
    why: /option --coverage, which npm keeps for itself/,
    resolved: 'npm test --coverage',
  },
  {
    cmd: 'yarn test',
    manifests: pkg({ pretest: 'tsc', test: 'jest' }),
    why: /pretest, which yarn 1 runs/,
    resolved: 'yarn test',
  },
  { cmd: 'vitest bench', why: /vitest bench, not a run of the test suite/, resolved: 'vitest bench' },
  { cmd: 'npx -p jest jest', why: /npx -p/, resolved: 'npx -p jest jest' },
  { cmd: 'pnpm dlx vitest', why: /downloads and runs a package/, resolved: 'pnpm dlx vitest' },
  { cmd: 'node -e "require(\'./t\')"', why: /runs no test runner/, resolved: 'node -e "require(\'./t\')"' },
  {
    cmd: 'cd pkg && npm test',
    manifests: pkg({ test: 'jest' }),
    why: /changes directory before `npm test`/,
    resolved: 'cd pkg && npm test',
  },
];

describe('planTestRun', () => {
  it.each(PLANNED)('plans $cmd', (row) => {
    if (!('runner' in row)) throw new Error('not a planned row');
    const r = planTestRun(row.cmd, row.manifests ?? {}, F);
    if (!('plan' in r)) throw new Error(`not planned: ${r.unverified}`);
    expect(r.plan.runner).toBe(row.runner);
    // Shown as a package script runs (npm exec puts node_modules/.bin on PATH, as binPath asks the caller to).
    expect(shown(r.plan.binPath ? `npm exec -c ${quote([r.plan.command])}` : r.plan.command)).toBe(row.run);
    expect(r.plan.resolved).toBe(row.resolved);
    expect(r.plan.env).toEqual(row.runner === 'cargo' ? { RUSTC_BOOTSTRAP: '1' } : {});
  });

  it.each(UNVERIFIED)('refuses to plan $cmd', (row) => {
    if (!('why' in row)) throw new Error('not an unverified row');
    const r = planTestRun(row.cmd, row.manifests ?? {}, F);
    if (!('unverified' in r)) throw new Error(`planned: ${r.plan.command}`);
    expect(r.unverified).toMatch(row.why);
    expect(r.resolved).toBe(row.resolved);
  });

  it('covers at least 30 spellings', () => {
    expect(PLANNED.length + UNVERIFIED.length).toBeGreaterThanOrEqual(30);
  });

  it('refuses a report path mocha cannot take', () => {
    const r = planTestRun('mocha', {}, '/tmp/a,b/report.json');
    expect(r).toEqual({ unverified: expect.stringMatching(/"," or "="/), resolved: 'mocha' });
  });
});

// ---------------------------------------------------------------------------------------------------------------

const ok = (r: TestReport | { error: string }): TestReport => {
  if ('error' in r) throw new Error(r.error);
  return r;
};
const summary = (r: TestReport) => r.tests.map((t) => `${t.outcome} ${t.id}`);

describe('readReport', () => {
  it('refuses an empty or cut-short report for every runner, never counting zero', () => {
    for (const runner of ['node:test', 'vitest', 'jest', 'mocha', 'pytest', 'go', 'cargo'] as RunnerName[])
      expect(readReport(runner, '  \n')).toEqual({ error: `the ${runner} report is empty` });
    const node = '{"event":"pass","name":"a","nesting":0,"file":"t.mjs","kind":"test","skip":false,"todo":false}\n';
    expect(readReport('node:test', node)).toEqual({ error: expect.stringMatching(/no end marker/) });
    expect(readReport('node:test', `${node}{"event":"end"`)).toEqual({ error: expect.stringMatching(/not JSON/) });
    expect(readReport('vitest', '{"numTotalTests": 1, "testResults": [')).toEqual({
      error: expect.stringMatching(/not valid JSON/),
    });
    expect(readReport('jest', '{"tests": []}')).toEqual({ error: expect.stringMatching(/not a jest-style/) });
    expect(readReport('mocha', '{"stats": {}, "passes": []}')).toEqual({
      error: expect.stringMatching(/not a mocha JSON report/),
    });
    const xml =
      '<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="1"><testcase classname="t" name="a"/>';
    expect(readReport('pytest', xml)).toEqual({ error: expect.stringMatching(/not well-formed XML/) });
    expect(readReport('pytest', '<results/>')).toEqual({ error: expect.stringMatching(/not a JUnit XML/) });
    expect(readReport('go', 'FAIL\tx [build failed]\n')).toEqual({ error: expect.stringMatching(/no go test events/) });
    expect(readReport('cargo', 'not json\n')).toEqual({ error: expect.stringMatching(/no finished test binary/) });
  });

  it('reads go test -json: subtests, skips, and a package that failed without a failed test', () => {
    const ev = (o: Record<string, unknown>) => JSON.stringify({ Time: '2026-01-01T00:00:00Z', ...o });
    const lines = [
      ev({ Action: 'start', Package: 'example.com/m/a' }),
      ev({ Action: 'run', Package: 'example.com/m/a', Test: 'TestAdd' }),
      ev({ Action: 'output', Package: 'example.com/m/a', Test: 'TestAdd', Output: '--- PASS: TestFake (0.00s)\n' }),
      ev({ Action: 'pass', Package: 'example.com/m/a', Test: 'TestAdd/small', Elapsed: 0 }),
      ev({ Action: 'fail', Package: 'example.com/m/a', Test: 'TestAdd/big', Elapsed: 0 }),
      ev({ Action: 'fail', Package: 'example.com/m/a', Test: 'TestAdd', Elapsed: 0 }),
      ev({ Action: 'skip', Package: 'example.com/m/a', Test: 'TestLater', Elapsed: 0 }),
      ev({ Action: 'fail', Package: 'example.com/m/a', Elapsed: 0.01 }),
      ev({ Action: 'start', Package: 'example.com/m/b' }),
      ev({ Action: 'output', Package: 'example.com/m/b', Output: 'FAIL\texample.com/m/b [build failed]\n' }),
      ev({
        Action: 'fail',
        Package: 'example.com/m/b',
        Elapsed: 0,
        FailedBuild: 'example.com/m/b [example.com/m/b.test]',
      }),
      ev({ Action: 'skip', Package: 'example.com/m/c', Elapsed: 0 }),
    ];
    const r = ok(readReport('go', `${lines.join('\n')}\n`));
    expect(summary(r)).toEqual([
      'passed example.com/m/a::TestAdd/small',
      'failed example.com/m/a::TestAdd/big',
      'failed example.com/m/a::TestAdd',
      'skipped example.com/m/a::TestLater',
      'failed example.com/m/b::(package)',
    ]);
    expect(r.counts).toEqual({ runner: 'go', passed: 1, failed: 3, skipped: 1, total: 5 });
    // Cut short: package a never finished.
    expect(readReport('go', `${lines.slice(0, 6).join('\n')}\n`)).toEqual({
      error: expect.stringMatching(/example.com\/m\/a never finished/),
    });
  });

  it('refuses cargo output whose test lines do not add up to the binary summary', () => {
    const good = [
      '{ "type": "suite", "event": "started", "test_count": 1 }',
      '{ "type": "test", "event": "started", "name": "tests::a" }',
      '{ "type": "test", "name": "tests::a", "event": "failed" }',
      '{ "type": "suite", "event": "failed", "passed": 0, "failed": 1, "ignored": 0, "measured": 0, "filtered_out": 0 }',
    ];
    expect(ok(readReport('cargo', good.join('\n'))).counts).toMatchObject({ passed: 0, failed: 1 });
    const forged = [...good.slice(0, 2), '{ "type": "test", "name": "tests::fake", "event": "ok" }', ...good.slice(2)];
    expect(readReport('cargo', forged.join('\n'))).toEqual({
      error: expect.stringMatching(/does not match its tests/),
    });
    expect(readReport('cargo', good.slice(0, 3).join('\n'))).toEqual({
      error: expect.stringMatching(/never finished/),
    });
  });

  it('makes absolute paths relative to the run directory, and numbers repeated names', () => {
    const doc = {
      numTotalTests: 3,
      testResults: [
        {
          name: '/tmp/checkout-1/test/a.test.ts',
          status: 'passed',
          assertionResults: [
            { ancestorTitles: ['math'], title: 'adds', status: 'passed' },
            { ancestorTitles: ['math'], title: 'adds', status: 'pending' },
            { ancestorTitles: [], title: 'later', status: 'todo' },
          ],
        },
      ],
    };
    const r = ok(readReport('vitest', JSON.stringify(doc), '/tmp/checkout-1'));
    expect(summary(r)).toEqual([
      'passed test/a.test.ts::math > adds',
      'skipped test/a.test.ts::math > adds (2)',
      'skipped test/a.test.ts::later',
    ]);
    expect(r.tests[0]!.file).toBe('test/a.test.ts');
    const unknown = {
      ...doc,
      testResults: [{ ...doc.testResults[0], assertionResults: [{ title: 'x', status: 'odd' }] }],
    };
    expect(readReport('jest', JSON.stringify(unknown))).toEqual({ error: expect.stringMatching(/status "odd"/) });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Real runners in temporary projects

const made: string[] = [];
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

function project(files: Record<string, string>, opts: { nodeModules?: boolean } = {}): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-runners-')));
  made.push(dir);
  const root = path.join(dir, 'project');
  fs.mkdirSync(root);
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  if (opts.nodeModules) fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

/** A copy of a project in another directory: a second clean checkout. */
function checkout(root: string): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-runners-')));
  made.push(dir);
  const copy = path.join(dir, 'elsewhere');
  fs.cpSync(root, copy, { recursive: true, verbatimSymlinks: true, filter: (src) => !src.includes('/target') });
  return copy;
}

/** The environment of a child run: none of this vitest's own variables. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(VITEST|npm_|LOKI_)/.test(k) && !['TEST', 'NODE_ENV', 'NODE_OPTIONS', 'FORCE_COLOR'].includes(k)) env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

interface Ran {
  plan: TestPlan;
  status: number | null;
  output: string;
  report: TestReport;
}

/** Plan the configured command, run the plan for real through the shell, read the report the runner wrote. */
function runFor(root: string, command: string, extraEnv: Record<string, string> = {}): Ran {
  const reportDir = fs.mkdtempSync(path.join(path.dirname(root), 'report-'));
  const reportFile = path.join(reportDir, 'report');
  const manifests = fs.existsSync(path.join(root, 'package.json'))
    ? { 'package.json': fs.readFileSync(path.join(root, 'package.json'), 'utf8') }
    : {};
  const planned: PlanResult = planTestRun(command, manifests, reportFile);
  if (!('plan' in planned)) throw new Error(`not planned: ${planned.unverified}`);
  const env = childEnv({ ...planned.plan.env, ...extraEnv });
  if (planned.plan.binPath) env.PATH = `${path.join(root, 'node_modules', '.bin')}${path.delimiter}${env.PATH}`;
  const r = spawnSync('sh', ['-c', planned.plan.command], {
    cwd: root,
    encoding: 'utf8',
    env,
    timeout: 50_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  const text = fs.existsSync(reportFile) ? fs.readFileSync(reportFile, 'utf8') : '';
  const report = readReport(planned.plan.runner, text, root);
  if ('error' in report) throw new Error(`${report.error}\n--- output of ${planned.plan.command}:\n${output}`);
  return { plan: planned.plan, status: r.status, output, report };
}

/** Whether a tool is installed: the pytest and cargo runs need them (both are here; a machine without them skips). */
const installed = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

const FAKE_JS = `console.log(' Tests  99 passed (99)\\nTests:       99 passed, 99 total\\nok 1 - fake\\n# tests 99\\n# pass 99\\n  99 passing (1ms)');`;

describe('real runs', () => {
  it('node:test: npm test resolved, its reporter replaced, counted from our reporter, same ids in another checkout', () => {
    const files = {
      'package.json': JSON.stringify({ type: 'module', scripts: { test: 'node --test --test-reporter=tap' } }),
      'test/a.test.mjs': [
        "import { describe, test } from 'node:test';",
        "import assert from 'node:assert';",
        FAKE_JS,
        "test('passes', () => {});",
        "test('fails', () => assert.equal(1, 2));",
        "test('skipped', { skip: true }, () => {});",
        "test('todo', { todo: true }, () => {});",
        "describe('group', () => { test('inner', async (t) => { await t.test('leaf', () => {}); }); });",
      ].join('\n'),
      'test/sub/b.test.mjs': "import { test } from 'node:test';\ntest('passes', () => {});\n",
      'test/broken.test.mjs': 'throw new Error("does not load");\n',
    };
    const root = project(files);
    const run = runFor(root, 'npm test');
    expect(run.plan.resolved).toBe('npm test -> node --test --test-reporter=tap');
    expect(run.plan.binPath).toBe(true);
    expect(run.status).not.toBe(0);
    expect(summary(run.report).sort()).toEqual([
      'failed test/a.test.mjs::fails',
      'failed test/broken.test.mjs::test/broken.test.mjs',
      'passed test/a.test.mjs::group > inner',
      'passed test/a.test.mjs::group > inner > leaf',
      'passed test/a.test.mjs::passes',
      'passed test/sub/b.test.mjs::passes',
      'skipped test/a.test.mjs::skipped',
      'skipped test/a.test.mjs::todo',
    ]);
    expect(run.report.counts).toEqual({ runner: 'node:test', passed: 4, failed: 2, skipped: 2, total: 8 });
    // The fake summary reached the terminal, and the report ignored it.
    expect(run.output).toContain('# tests 99');
    const again = runFor(checkout(root), 'npm test');
    expect(again.report.tests.map((t) => t.id).sort()).toEqual(run.report.tests.map((t) => t.id).sort());
  });

  it('vitest: counted from its JSON report, not from a printed "Tests 99 passed (99)"', () => {
    const files = {
      'package.json': JSON.stringify({ type: 'module', scripts: { test: 'vitest --reporter=dot' } }),
      'test/a.test.ts': [
        "import { describe, expect, it } from 'vitest';",
        FAKE_JS,
        "it('passes', () => expect(1).toBe(1));",
        "it('fails', () => expect(1).toBe(2));",
        "it.skip('skipped', () => {});",
        "it.todo('todo');",
        "describe('group', () => { describe('inner', () => { it('deep', () => {}); }); });",
      ].join('\n'),
      'test/empty-fails-to-load.test.ts': "import './missing-module.js';\n",
    };
    const root = project(files, { nodeModules: true });
    const run = runFor(root, 'npm test');
    expect(run.plan.resolved).toBe('npm test -> vitest --reporter=dot');
    expect(run.status).not.toBe(0);
    expect(summary(run.report).sort()).toEqual([
      'failed test/a.test.ts::fails',
      'failed test/empty-fails-to-load.test.ts::test/empty-fails-to-load.test.ts',
      'passed test/a.test.ts::group > inner > deep',
      'passed test/a.test.ts::passes',
      'skipped test/a.test.ts::skipped',
      'skipped test/a.test.ts::todo',
    ]);
    expect(run.report.counts).toEqual({ runner: 'vitest', passed: 2, failed: 2, skipped: 2, total: 6 });
    expect(run.output).toContain('Tests  99 passed (99)');
    const again = runFor(checkout(root), 'npm test');
    expect(again.report.tests.map((t) => t.id).sort()).toEqual(run.report.tests.map((t) => t.id).sort());
  });

  it('jest: counted from --json --outputFile', () => {
    const files = {
      'package.json': JSON.stringify({ name: 'j', scripts: { test: 'jest --verbose' } }),
      'test/a.test.js': [
        FAKE_JS,
        "test('passes', () => expect(1).toBe(1));",
        "test('fails', () => expect(1).toBe(2));",
        "test.skip('skipped', () => {});",
        "test.todo('todo');",
        "describe('group', () => { test('deep', () => {}); });",
      ].join('\n'),
      'test/broken.test.js': 'this is not javascript(\n',
    };
    const root = project(files, { nodeModules: true });
    const run = runFor(root, 'npm test');
    expect(run.status).not.toBe(0);
    expect(summary(run.report).sort()).toEqual([
      'failed test/a.test.js::fails',
      'failed test/broken.test.js::test/broken.test.js',
      'passed test/a.test.js::group > deep',
      'passed test/a.test.js::passes',
      'skipped test/a.test.js::skipped',
      'skipped test/a.test.js::todo',
    ]);
    expect(run.report.counts).toEqual({ runner: 'jest', passed: 2, failed: 2, skipped: 2, total: 6 });
    expect(run.output).toContain('99 passed, 99 total');
  });

  it('mocha: counted from the json reporter written to the file, hook failures included', () => {
    const files = {
      'package.json': JSON.stringify({ name: 'm', scripts: { test: "mocha --reporter spec 'test/**/*.test.js'" } }),
      'test/a.test.js': [
        "const assert = require('node:assert');",
        FAKE_JS,
        "it('passes', () => {});",
        "it('fails', () => assert.equal(1, 2));",
        "it.skip('skipped', () => {});",
        "it('pending');",
        "describe('group', () => { it('deep', () => {}); });",
        "describe('hooked', () => { before(() => { throw new Error('x'); }); it('never runs', () => {}); });",
      ].join('\n'),
    };
    const root = project(files, { nodeModules: true });
    const run = runFor(root, 'npm test');
    expect(run.status).not.toBe(0);
    expect(summary(run.report)).toEqual([
      'passed test/a.test.js::passes',
      'passed test/a.test.js::group deep',
      'failed test/a.test.js::fails',
      'failed test/a.test.js::hooked "before all" hook for "never runs"',
      'skipped test/a.test.js::skipped',
      'skipped test/a.test.js::pending',
    ]);
    expect(run.report.counts).toEqual({ runner: 'mocha', passed: 2, failed: 2, skipped: 2, total: 6 });
    expect(run.output).toContain('99 passing');
  });

  it.skipIf(!installed('python3', '-m', 'pytest', '--version'))(
    'pytest: counted from --junitxml, errors as failures and xfail as skipped',
    () => {
      const files = {
        'tests/test_a.py': [
          'import pytest',
          'print("===== 99 passed in 0.01s =====")',
          'def test_passes(): assert True',
          'def test_fails(): assert 1 == 2',
          '@pytest.mark.skip(reason="no")',
          'def test_skipped(): pass',
          '@pytest.mark.xfail',
          'def test_xfail(): assert False',
          'class TestGroup:',
          '    @pytest.mark.parametrize("x", [1, 2])',
          '    def test_param(self, x): assert x',
          '@pytest.fixture',
          'def broken(): raise RuntimeError("setup")',
          'def test_error(broken): pass',
        ].join('\n'),
      };
      const root = project(files);
      const run = runFor(root, 'python3 -m pytest -q -p no:cacheprovider');
      expect(run.plan.command).toMatch(/^python3 -m pytest --junitxml=\S+ -q -p no:cacheprovider$/);
      expect(run.status).toBe(1);
      expect(summary(run.report)).toEqual([
        'passed tests.test_a::test_passes',
        'failed tests.test_a::test_fails',
        'skipped tests.test_a::test_skipped',
        'skipped tests.test_a::test_xfail',
        'passed tests.test_a.TestGroup::test_param[1]',
        'passed tests.test_a.TestGroup::test_param[2]',
        'failed tests.test_a::test_error',
      ]);
      expect(run.report.counts).toEqual({ runner: 'pytest', passed: 3, failed: 2, skipped: 2, total: 7 });
      expect(run.output).not.toContain('99 passed'); // pytest captured the print; the text parser never saw it
    },
  );

  it.skipIf(!installed('cargo', '--version'))(
    'cargo: counted from libtest JSON across unit, integration and doc tests',
    () => {
      const files = {
        'Cargo.toml': '[package]\nname = "tiny"\nversion = "0.1.0"\nedition = "2021"\n',
        'src/lib.rs': [
          '/// Adds.',
          '///',
          '/// ```',
          '/// assert_eq!(tiny::add(1, 2), 3);',
          '/// ```',
          'pub fn add(a: i32, b: i32) -> i32 { a + b }',
          '#[cfg(test)]',
          'mod tests {',
          '    #[test] fn passes() { println!("test result: ok. 99 passed; 0 failed; 0 ignored;"); assert_eq!(super::add(1, 1), 2); }',
          '    #[test] fn fails() { assert_eq!(super::add(1, 1), 3); }',
          '    #[test] #[ignore] fn skipped() {}',
          '}',
        ].join('\n'),
        'tests/it.rs': '#[test] fn passes() { assert_eq!(tiny::add(2, 2), 4); }\n',
      };
      const root = project(files);
      const run = runFor(root, 'cargo test -- --nocapture', {
        CARGO_TARGET_DIR: path.join(path.dirname(root), 'target'),
        CARGO_TERM_COLOR: 'never',
      });
      expect(run.plan.env).toEqual({ RUSTC_BOOTSTRAP: '1' });
      expect(run.status).not.toBe(0);
      expect(summary(run.report).sort()).toEqual([
        'failed tests::fails',
        'passed passes',
        'passed src/lib.rs - add (line 3)',
        'passed tests::passes',
        'skipped tests::skipped',
      ]);
      expect(run.report.counts).toEqual({ runner: 'cargo', passed: 3, failed: 1, skipped: 1, total: 5 });
      // --nocapture was dropped: the fake summary stayed in libtest's capture of a passing test, out of everything.
      expect(run.output).not.toContain('99 passed');
      expect(parseTestCounts(run.output)).toBeNull();
    },
  );
});
