/**
 * The pure parts of verification: check detection, test counts from real runner output, the tests verdict,
 * test files and skip markers, and the findings a record yields.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectChecks, resolveChecks, type ProjectProbe } from '../mcp-server/src/domain/checks.js';
import { isTestFile, newlySkipped, skipMarkerCounts } from '../mcp-server/src/domain/test-files.js';
import { judgeTests, parseTestCounts } from '../mcp-server/src/domain/test-output.js';
import { verificationFindings, type VerificationRecord } from '../mcp-server/src/verify/index.js';
import { outputTail } from '../mcp-server/src/verify/command.js';
import { REPO_ROOT } from './helpers.js';

const sample = (name: string) => fs.readFileSync(path.join(REPO_ROOT, 'tests/fixtures/runner-output', name), 'utf8');
const probe = (files: ProjectProbe['files'], pythonTestFiles = false): ProjectProbe => ({ files, pythonTestFiles });
const commands = (p: ProjectProbe) =>
  Object.fromEntries(Object.entries(detectChecks(p)).map(([k, v]) => [k, v.command]));

describe('check detection', () => {
  it('reads package.json scripts, ignoring npm placeholder test script, with the lockfile runner', () => {
    const pkg = JSON.stringify({ scripts: { test: 'vitest run', build: 'tsc', lint: 'eslint .' } });
    expect(commands(probe({ 'package.json': pkg }))).toEqual({
      test: 'npm test',
      build: 'npm run build',
      lint: 'npm run lint',
    });
    expect(commands(probe({ 'package.json': pkg, 'pnpm-lock.yaml': '' }))).toEqual({
      test: 'pnpm test',
      build: 'pnpm run build',
      lint: 'pnpm run lint',
    });
    expect(commands(probe({ 'package.json': pkg, 'yarn.lock': '' })).test).toBe('yarn test');
    const placeholder = JSON.stringify({ scripts: { test: 'echo "Error: no test specified" && exit 1' } });
    expect(commands(probe({ 'package.json': placeholder }))).toEqual({});
    expect(commands(probe({ 'package.json': '{ not json' }))).toEqual({});
    expect(detectChecks(probe({ 'package.json': pkg })).test?.from).toBe('package.json scripts.test');
  });

  it('reads Makefile rules, not variable assignments', () => {
    expect(commands(probe({ Makefile: 'test: build\n\tgo test ./...\nbuild:\n\tgo build\nlint := off\n' }))).toEqual({
      test: 'make test',
      build: 'make build',
    });
  });

  it('infers cargo, go and python commands', () => {
    expect(commands(probe({ 'Cargo.toml': '[package]\nname = "x"\n' }))).toEqual({
      test: 'cargo test',
      build: 'cargo build',
    });
    expect(commands(probe({ 'go.mod': 'module example.com/x\n' }))).toEqual({
      test: 'go test -v ./...',
      build: 'go build ./...',
      lint: 'go vet ./...',
    });
    expect(
      commands(
        probe({ 'pyproject.toml': '[tool.pytest.ini_options]\naddopts = "-q"\n[tool.ruff]\nline-length = 100\n' }),
      ),
    ).toEqual({ test: 'python3 -m pytest', lint: 'ruff check .' });
    expect(commands(probe({ 'pytest.ini': '[pytest]\n' })).test).toBe('python3 -m pytest');
    expect(commands(probe({ 'setup.cfg': '[tool:pytest]\n[flake8]\nmax-line-length=100\n' }))).toEqual({
      test: 'python3 -m pytest',
      lint: 'python3 -m flake8',
    });
    expect(commands(probe({ 'tox.ini': '[pytest]\n' })).test).toBe('python3 -m pytest');
    expect(commands(probe({}, true)).test).toBe('python3 -m pytest');
    expect(commands(probe({ 'pyproject.toml': '[project]\nname = "x"\n' }))).toEqual({});
    expect(commands(probe({}))).toEqual({});
  });

  it('prefers package.json scripts, then Makefile targets, over inferred commands', () => {
    const p = probe({
      'package.json': JSON.stringify({ scripts: { test: 'jest' } }),
      Makefile: 'test:\n\tx\nlint:\n\ty\n',
      'go.mod': 'module m\n',
    });
    expect(commands(p)).toEqual({ test: 'npm test', lint: 'make lint', build: 'go build ./...' });
  });

  it('lets configuration override detection, and an empty setting disables a check', () => {
    const detected = detectChecks(probe({ 'go.mod': 'module m\n' }));
    const r = resolveChecks({ test: 'make check', build: '', lint: null }, detected);
    expect(r.map((c) => [c.name, c.command, c.source])).toEqual([
      ['build', null, 'config'],
      ['test', 'make check', 'config'],
      ['lint', 'go vet ./...', 'detected'],
    ]);
    expect(
      resolveChecks({ test: null, build: null, lint: null }, {}).every((c) => c.command === null && c.source === null),
    ).toBe(true);
  });
});

describe('test counts from runner output', () => {
  it.each([
    ['node-tap-red.txt', { runner: 'node:test', passed: 1, failed: 1, skipped: 2, total: 4 }],
    ['node-spec-red.txt', { runner: 'node:test', passed: 1, failed: 1, skipped: 2, total: 4 }],
    ['node-tap-zero.txt', { runner: 'node:test', passed: 0, failed: 0, skipped: 0, total: 0 }],
    ['vitest-red.txt', { runner: 'vitest', passed: 1, failed: 1, skipped: 1, total: 3 }],
    ['vitest-green-color.txt', { runner: 'vitest', passed: 1, failed: 0, skipped: 1, total: 2 }],
    ['jest-red.txt', { runner: 'jest', passed: 4, failed: 1, skipped: 2, total: 7 }],
    ['jest-zero.txt', { runner: 'jest', passed: 0, failed: 0, skipped: 0, total: 0 }],
    ['mocha-red.txt', { runner: 'mocha', passed: 2, failed: 1, skipped: 1, total: 4 }],
    ['pytest-red.txt', { runner: 'pytest', passed: 1, failed: 1, skipped: 1, total: 3 }],
    ['pytest-q-red.txt', { runner: 'pytest', passed: 1, failed: 1, skipped: 1, total: 3 }],
    ['pytest-zero.txt', { runner: 'pytest', passed: 0, failed: 0, skipped: 0, total: 0 }],
    ['cargo-green.txt', { runner: 'cargo', passed: 2, failed: 0, skipped: 1, total: 3 }],
    ['cargo-red.txt', { runner: 'cargo', passed: 1, failed: 1, skipped: 1, total: 3 }],
    ['go-red.txt', { runner: 'go', passed: 2, failed: 1, skipped: 1, total: 4 }],
    ['go-zero.txt', { runner: 'go', passed: 0, failed: 0, skipped: 0, total: 0 }],
  ])('%s', (file, expected) => {
    expect(parseTestCounts(sample(file))).toEqual(expected);
  });

  it('reads a generic summary line and pytest errors, and gives null for anything else', () => {
    expect(parseTestCounts('building...\nResults: 12 passed, 1 failed, 2 skipped\n')).toEqual({
      runner: 'generic',
      passed: 12,
      failed: 1,
      skipped: 2,
      total: 15,
    });
    expect(parseTestCounts('Passed: 3, Failed: 0')).toEqual({
      runner: 'generic',
      passed: 3,
      failed: 0,
      skipped: 0,
      total: 3,
    });
    expect(parseTestCounts('==== 2 failed, 5 passed, 1 error in 0.12s ====')).toMatchObject({
      runner: 'pytest',
      passed: 5,
      failed: 3,
    });
    expect(parseTestCounts('All good!\n')).toBeNull();
    expect(parseTestCounts('')).toBeNull();
    expect(parseTestCounts('Compiled 3 files in 2.1s\n0 errors\n')).toBeNull();
  });
});

describe('the tests verdict', () => {
  const ok = { exitCode: 0, signal: null, timedOut: false, timeoutSeconds: 60 };
  const counts = (passed: number, failed = 0, skipped = 0) => ({
    runner: 'vitest' as const,
    passed,
    failed,
    skipped,
    total: passed + failed + skipped,
  });

  it('passes only with exit 0 and more than zero tests run', () => {
    expect(judgeTests(ok, counts(3))).toEqual({ verdict: 'pass', reason: '3 passed, 0 failed, 0 skipped (vitest)' });
    expect(judgeTests(ok, counts(0)).verdict).toBe('inconclusive');
    expect(judgeTests(ok, counts(0, 0, 4))).toEqual({
      verdict: 'inconclusive',
      reason: 'zero tests ran: all 4 were skipped',
    });
    expect(judgeTests(ok, null)).toMatchObject({
      verdict: 'inconclusive',
      reason: expect.stringMatching(/counts unknown/),
    });
  });

  it('fails on a non-zero exit, a signal, a timeout, or failures reported despite exit 0', () => {
    expect(judgeTests({ ...ok, exitCode: 1 }, counts(2, 1))).toEqual({
      verdict: 'fail',
      reason: 'exited with code 1 (1 of 3 tests failed)',
    });
    expect(judgeTests({ ...ok, exitCode: 1 }, null).verdict).toBe('fail');
    expect(judgeTests({ ...ok, exitCode: 5 }, counts(0)).reason).toMatch(/no tests ran/);
    expect(judgeTests({ ...ok, exitCode: null, signal: 'SIGKILL' }, null)).toMatchObject({
      verdict: 'fail',
      reason: 'killed by SIGKILL',
    });
    expect(judgeTests({ ...ok, exitCode: null, timedOut: true }, null)).toMatchObject({
      verdict: 'fail',
      reason: 'timed out after 60 s',
    });
    expect(judgeTests(ok, counts(2, 1)).verdict).toBe('fail');
  });
});

describe('test files and skip markers', () => {
  it('recognises test files by the conventions of each ecosystem', () => {
    for (const f of [
      'src/a.test.ts',
      'b.spec.jsx',
      'x/__tests__/y.js',
      'test/helper.mjs',
      'tests/test_api.py',
      'pkg/api_test.py',
      'conftest.py',
      'math_test.go',
      'tests/it.rs',
      'crate/tests/a.rs',
    ]) {
      expect(isTestFile(f), f).toBe(true);
    }
    for (const f of [
      'src/app.ts',
      'testing.md',
      'tests/data.json',
      'src/lib.rs',
      'main.go',
      'contest.py',
      'latest/x.js',
    ])
      expect(isTestFile(f), f).toBe(false);
  });

  it('counts skip and only markers per language', () => {
    const js =
      "it.skip('a', () => {});\ndescribe.skip('b', () => {});\nxit('c');\ntest.only('d');\ntest('e', { skip: true }, () => {});\nit.todo('f');\nit('g');\nconst x = { skipped: true };";
    expect(skipMarkerCounts('a.test.ts', js)).toEqual({
      '.skip': 2,
      'xit/xdescribe': 1,
      '.only': 1,
      '{ skip }': 1,
      '.todo': 1,
    });
    const py =
      '@pytest.mark.skip(reason="x")\ndef test_a(): pass\n@pytest.mark.skipif(True, reason="y")\ndef test_b():\n    pytest.skip("z")\n@unittest.skip("w")\nclass T: pass\n';
    expect(skipMarkerCounts('tests/test_a.py', py)).toEqual({
      '@pytest.mark.skip': 2,
      'pytest.skip()': 1,
      '@unittest.skip': 1,
    });
    expect(
      skipMarkerCounts(
        'a_test.go',
        'func TestA(t *testing.T) { t.Skip("later") }\nfunc TestB(t *testing.T) { t.Skipf("%d", 1) }',
      ),
    ).toEqual({ 't.Skip()': 2 });
    expect(
      skipMarkerCounts('src/lib.rs', '#[test]\n#[ignore]\nfn a() {}\n#[test]\n#[ignore = "slow"]\nfn b() {}'),
    ).toEqual({ '#[ignore]': 2 });
    expect(skipMarkerCounts('README.md', 'it.skip(')).toEqual({});
  });

  it('reports markers that grew since the baseline; a new file starts from zero', () => {
    const before = "it('a', () => {});\nit.skip('b', () => {});\n";
    expect(newlySkipped('a.test.js', before, before)).toBeNull();
    expect(newlySkipped('a.test.js', before, "it('a', () => {});\n")).toBeNull();
    expect(newlySkipped('a.test.js', before, "it.skip('a', () => {});\nit.skip('b', () => {});\n")).toEqual({
      file: 'a.test.js',
      markers: [{ marker: '.skip', before: 1, now: 2 }],
    });
    expect(newlySkipped('a.test.js', before, "it('a', () => {});\nit.only('b', () => {});\n")).toEqual({
      file: 'a.test.js',
      markers: [{ marker: '.only', before: 0, now: 1 }],
    });
    expect(newlySkipped('a.test.js', null, "xit('new', () => {});\n")).toEqual({
      file: 'a.test.js',
      markers: [{ marker: 'xit/xdescribe', before: 0, now: 1 }],
    });
  });
});

describe('the output tail', () => {
  it('keeps the last 4 KB from a line start and redacts secrets', () => {
    const key = 'AKIA' + 'ABCDEFGHIJKLMNOP';
    const out = `${'noise line\n'.repeat(2000)}config loaded with ${key}\nTests 1 passed\n`;
    const tail = outputTail(out);
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(4096);
    expect(tail.startsWith('noise line\n')).toBe(true);
    expect(tail).toContain('[REDACTED:aws-access-key]');
    expect(tail).not.toContain(key);
    expect(tail.endsWith('Tests 1 passed\n')).toBe(true);
  });
});

describe('findings from a record', () => {
  const check = (over: Partial<VerificationRecord['checks'][number]>): VerificationRecord['checks'][number] => ({
    name: 'test',
    verdict: 'pass',
    reason: '3 passed',
    command: 'npm test',
    source: 'detected',
    from: 'package.json scripts.test',
    exitCode: 0,
    signal: null,
    timedOut: false,
    durationMs: 10,
    tests: { runner: 'node:test', passed: 3, failed: 0, skipped: 0, total: 3 },
    outputTail: '',
    outputBytes: 0,
    ...over,
  });
  const record = (over: Partial<VerificationRecord> = {}): VerificationRecord => ({
    id: 'v0001',
    runId: 'r-1',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    only: ['build', 'test', 'lint'],
    codeState: 'a'.repeat(40),
    codeStateBefore: 'a'.repeat(40),
    git: { repository: true, baselineCommit: 'b'.repeat(40), headSha: null },
    checks: [
      check({ name: 'build', verdict: 'absent', command: null, tests: null }),
      check({}),
      check({ name: 'lint', verdict: 'pass', tests: null }),
    ],
    diff: { available: true, filesChanged: 2, insertions: 10, deletions: 1, files: [], filesOmitted: 0 },
    testFiles: { available: true, deleted: [], newlySkipped: [] },
    secrets: { available: true, scannedFiles: 2, findings: [], preexisting: 0, skipped: [] },
    notes: [],
    ...over,
  });

  it('has nothing to say about a clean record', () => {
    expect(verificationFindings(record())).toEqual({ blocking: [], gaps: [], toJudge: [] });
  });

  it('blocks on removed or thinned tests until a reason is stated, then leaves them to the council', () => {
    const removed = {
      testFiles: {
        available: true,
        deleted: ['test/a.test.js'],
        newlySkipped: [],
        fewerAssertions: [{ file: 'test/b.test.js', before: 3, now: 1 }],
      },
      testsGone: { ids: ['test/a.test.js::works'], count: 1, baselineRan: 4, nowRan: 3 },
    };
    const silent = verificationFindings(record(removed));
    expect(silent.toJudge).toEqual([]);
    expect(silent.blocking).toEqual([
      expect.stringMatching(/^Test file test\/a\.test\.js was deleted .*`testRemovalReason`/),
      expect.stringMatching(
        /^1 test\(s\) that ran at the baseline no longer run .*\(3 < 4\): test\/a\.test\.js::works\. /,
      ),
      expect.stringMatching(/^Test files of the baseline hold fewer assertions .*test\/b\.test\.js \(3 -> 1\)/),
    ]);
    const stated = verificationFindings(record({ ...removed, testRemovalReason: 'the spec drops feature a' }));
    expect(stated.blocking).toEqual([]);
    expect(stated.toJudge).toHaveLength(3);
    for (const t of stated.toJudge)
      expect(t).toMatch(/The agent's reason: "the spec drops feature a"\. The council's approval/);
  });

  it('blocks on each failing fact, with how to fix it', () => {
    const r = record({
      checks: [
        check({ name: 'build', verdict: 'fail', reason: 'exited with code 2', tests: null }),
        check({
          verdict: 'inconclusive',
          reason: 'zero tests ran',
          tests: { runner: 'vitest', passed: 0, failed: 0, skipped: 0, total: 0 },
        }),
        check({ name: 'lint', verdict: 'fail', timedOut: true, reason: 'timed out after 5 s', tests: null }),
      ],
      diff: { available: true, filesChanged: 0, insertions: 0, deletions: 0, files: [], filesOmitted: 0 },
      testFiles: {
        available: true,
        deleted: ['test/a.test.js'],
        newlySkipped: [{ file: 'test/b.test.js', markers: [{ marker: '.skip', before: 0, now: 1 }] }],
      },
      secrets: {
        available: true,
        scannedFiles: 1,
        findings: [{ file: 'src/config.js', line: 3, kind: 'aws-access-key' }],
        preexisting: 0,
        skipped: [{ file: 'big.log', reason: 'larger than 1024 KB' }],
      },
    });
    const f = verificationFindings(r);
    expect(f.blocking).toHaveLength(7);
    expect(f.blocking[0]).toMatch(/build check failed: `npm test` exited with code 2/);
    expect(f.blocking[1]).toMatch(/^Zero tests ran.*Add tests/);
    expect(f.blocking[2]).toBe(
      'The lint check `npm test` timed out after 5 s: make it faster or raise checks.timeoutSeconds in .loki/config.yaml, then run loki_verify again.',
    );
    expect(f.blocking.join('\n')).toMatch(/empty diff/);
    expect(f.blocking.join('\n')).toMatch(/test\/a\.test\.js was deleted.*Restore what was removed/);
    expect(f.blocking.join('\n')).toMatch(/test\/b\.test\.js skips more tests.*\.skip 0 -> 1/);
    expect(f.blocking.join('\n')).toMatch(
      /src\/config\.js holds what looks like a secret \(aws-access-key\) on line 3: remove it/,
    );
    expect(f.gaps).toEqual([
      expect.stringMatching(/1 changed file\(s\) were not scanned for secrets \(big\.log: larger than 1024 KB\)/),
    ]);
  });

  it('discloses gaps: no test command, counts unknown, and the notes the server wrote', () => {
    const noCommand = verificationFindings(
      record({
        checks: [check({ verdict: 'unknown', command: null, tests: null })],
        notes: ['Not a git repository: ...'],
      }),
    );
    expect(noCommand.blocking).toEqual([]);
    expect(noCommand.gaps).toEqual([
      expect.stringMatching(/No test command.*set checks\.test in \.loki\/config\.yaml/),
      'Not a git repository: ...',
    ]);
    const unknownCounts = verificationFindings(
      record({ checks: [check({ verdict: 'inconclusive', tests: null, reason: 'counts unknown' })] }),
    );
    expect(unknownCounts).toEqual({
      blocking: [],
      gaps: [expect.stringMatching(/could not read how many tests ran/)],
      toJudge: [],
    });
  });

  it('lists allowed secret findings with their reasons as a gap, never as a block', () => {
    const allowed = Array.from({ length: 12 }, (_, i) => ({
      file: `test/f${i}.js`,
      line: i + 1,
      kind: 'aws-access-key',
      reason: `fixture ${i}, not a real key`,
    }));
    const one = verificationFindings(
      record({
        secrets: {
          available: true,
          scannedFiles: 1,
          findings: [],
          allowed: allowed.slice(0, 1),
          preexisting: 0,
          skipped: [],
        },
      }),
    );
    expect(one).toEqual({
      blocking: [],
      gaps: [
        '1 secret finding(s) were allowed by the agent with a reason: test/f0.js:1 (aws-access-key): fixture 0, not a real key.',
      ],
      toJudge: [],
    });
    const many = verificationFindings(
      record({ secrets: { available: true, scannedFiles: 12, findings: [], allowed, preexisting: 0, skipped: [] } }),
    );
    expect(many.gaps[0]).toMatch(
      /^12 secret finding\(s\) were allowed.*test\/f9\.js:10 .*; \.\.\. 2 more in the verification record\.$/,
    );
    expect(many.gaps[0]).not.toContain('test/f10.js');
  });

  it('discloses every changed file the secret scan could not read, links and old "binary" records included', () => {
    const f = verificationFindings(
      record({
        secrets: {
          available: true,
          scannedFiles: 0,
          findings: [],
          preexisting: 0,
          skipped: [
            { file: 'vendor/lib', reason: 'not a file (submodule)' },
            { file: 'src/link.js', reason: 'not a file (symbolic link)' },
            { file: 'assets/logo.png', reason: 'binary' },
          ],
        },
      }),
    );
    expect(f.blocking).toEqual([]);
    expect(f.gaps).toEqual([
      '3 changed file(s) were not scanned for secrets (vendor/lib: not a file (submodule); src/link.js: not a file (symbolic link); assets/logo.png: binary).',
    ]);
  });

  it('says how to allow a finding that is not a real credential', () => {
    const f = verificationFindings(
      record({
        secrets: {
          available: true,
          scannedFiles: 1,
          findings: [{ file: 'src/a.js', line: 2, kind: 'jwt' }],
          preexisting: 0,
          skipped: [],
        },
      }),
    );
    expect(f.blocking).toEqual([expect.stringMatching(/src\/a\.js holds .*loki-allow-secret: <why>/)]);
  });

  it('blocks when the tests were left out of the verification', () => {
    const f = verificationFindings(record({ only: ['lint'], checks: [check({ verdict: 'not-run' })] }));
    expect(f.blocking).toEqual([expect.stringMatching(/did not run the tests.*without `only`/)]);
  });
});
