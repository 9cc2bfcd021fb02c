/**
 * Test counts read from a runner's output, and the judgement of the tests fact. Pure.
 *
 * Each runner's summary is recognised by its own shape (vitest, jest, node:test in TAP or spec form, mocha,
 * pytest, cargo test, go test -v), then a generic "N passed, N failed" line; anything else gives null, never a
 * guess. "Ran" means passed + failed: skipped and todo tests did not run.
 */

export interface TestCounts {
  runner: 'vitest' | 'jest' | 'node:test' | 'mocha' | 'pytest' | 'cargo' | 'go' | 'generic';
  passed: number;
  failed: number;
  skipped: number;
  total: number;
}

export type TestVerdict = 'pass' | 'fail' | 'inconclusive' | 'unknown';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

const num = (s: string | undefined): number => (s === undefined ? 0 : Number(s));

/** Sum of "<n> <word>" pairs in a summary fragment, by the words each bucket accepts. */
function tally(
  fragment: string,
  buckets: { passed: RegExp; failed: RegExp; skipped: RegExp },
): { passed: number; failed: number; skipped: number; matched: boolean } {
  const out = { passed: 0, failed: 0, skipped: 0, matched: false };
  for (const m of fragment.matchAll(/(\d+)\s+([a-z]+)/gi)) {
    const n = Number(m[1]);
    const word = m[2]!.toLowerCase();
    if (buckets.passed.test(word)) out.passed += n;
    else if (buckets.failed.test(word)) out.failed += n;
    else if (buckets.skipped.test(word)) out.skipped += n;
    else continue;
    out.matched = true;
  }
  return out;
}

function lastMatch(text: string, re: RegExp): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
  for (let m = g.exec(text); m !== null; m = g.exec(text)) last = m;
  return last;
}

type Parser = (text: string) => TestCounts | null;

const vitest: Parser = (text) => {
  // " Tests  1 failed | 1 passed | 1 skipped (3)"; with no test files: "No test files found, exiting with code 0".
  const m = lastMatch(text, /^\s*Tests\s{2,}(.*?)\s*\((\d+)\)\s*$/m);
  if (m) {
    const t = tally(m[1]!, { passed: /^passed$/, failed: /^failed$/, skipped: /^(skipped|todo)$/ });
    if (t.matched)
      return { runner: 'vitest', passed: t.passed, failed: t.failed, skipped: t.skipped, total: num(m[2]) };
  }
  if (/^No test files found, exiting with code \d/m.test(text) && /\bvitest\b/i.test(text))
    return { runner: 'vitest', passed: 0, failed: 0, skipped: 0, total: 0 };
  return null;
};

const jest: Parser = (text) => {
  // "Tests:       1 failed, 1 skipped, 4 passed, 6 total"; with none: "No tests found, exiting with code 1".
  const m = lastMatch(text, /^Tests:\s+(.*?)(\d+) total\s*$/m);
  if (m) {
    const t = tally(m[1]!, { passed: /^passed$/, failed: /^failed$/, skipped: /^(skipped|todo|pending)$/ });
    return { runner: 'jest', passed: t.passed, failed: t.failed, skipped: t.skipped, total: num(m[2]) };
  }
  if (/^No tests found, exiting with code \d/m.test(text))
    return { runner: 'jest', passed: 0, failed: 0, skipped: 0, total: 0 };
  return null;
};

const nodeTest: Parser = (text) => {
  // TAP ("# tests 4", "# pass 1" ...) or the spec reporter ("ℹ tests 4" ...): the last summary block.
  const total = lastMatch(text, /^[#\u2139] tests (\d+)\s*$/m);
  if (!total) return null;
  const block = text.slice(total.index);
  const field = (name: string) => num(new RegExp(`^[#ℹ] ${name} (\\d+)\\s*$`, 'm').exec(block)?.[1]);
  return {
    runner: 'node:test',
    passed: field('pass'),
    failed: field('fail') + field('cancelled'),
    skipped: field('skipped') + field('todo'),
    total: num(total[1]),
  };
};

const mocha: Parser = (text) => {
  // "  1 passing (7ms)", "  1 pending", "  1 failing"
  const m = lastMatch(text, /^\s*(\d+) passing \([^)]*\)\s*$/m);
  if (!m) return null;
  const after = text.slice(m.index);
  const failed = num(/^\s*(\d+) failing\s*$/m.exec(after)?.[1]);
  const skipped = num(/^\s*(\d+) pending\s*$/m.exec(after)?.[1]);
  const passed = num(m[1]);
  return { runner: 'mocha', passed, failed, skipped, total: passed + failed + skipped };
};

const pytest: Parser = (text) => {
  // "===== 1 failed, 1 passed, 1 skipped in 0.96s =====", "-q": "1 passed in 0.82s", none: "no tests ran in 0.76s".
  const m = lastMatch(text, /^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran) in [\d.]+s(?: \([^)]*\))?\s*=*\s*$/m);
  if (!m) return null;
  if (m[1] === 'no tests ran') return { runner: 'pytest', passed: 0, failed: 0, skipped: 0, total: 0 };
  const t = tally(m[1]!, {
    passed: /^(passed|xpassed)$/,
    failed: /^(failed|errors?)$/,
    skipped: /^(skipped|xfailed)$/,
  });
  if (!t.matched && !/\bdeselected\b/.test(m[1]!)) return null;
  return {
    runner: 'pytest',
    passed: t.passed,
    failed: t.failed,
    skipped: t.skipped,
    total: t.passed + t.failed + t.skipped,
  };
};

const cargo: Parser = (text) => {
  // One "test result:" line per test binary (unit tests, each integration test file, doc-tests): summed.
  const re = /^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;/gm;
  let found = false;
  const c: TestCounts = { runner: 'cargo', passed: 0, failed: 0, skipped: 0, total: 0 };
  for (const m of text.matchAll(re)) {
    found = true;
    c.passed += num(m[1]);
    c.failed += num(m[2]);
    c.skipped += num(m[3]);
  }
  if (!found) return null;
  c.total = c.passed + c.failed + c.skipped;
  return c;
};

const goTest: Parser = (text) => {
  // -v prints "--- PASS: TestX (0.00s)" per test (subtests indented: only top-level tests are counted).
  const c: TestCounts = { runner: 'go', passed: 0, failed: 0, skipped: 0, total: 0 };
  let found = false;
  for (const m of text.matchAll(/^--- (PASS|FAIL|SKIP): \S+/gm)) {
    found = true;
    if (m[1] === 'PASS') c.passed++;
    else if (m[1] === 'FAIL') c.failed++;
    else c.skipped++;
  }
  if (!found) {
    // Every package reported "[no test files]" and none ran: zero tests.
    const lines = text.split('\n').filter((l) => /^(ok|FAIL|\?)\s+\S+\s/.test(l));
    if (lines.length > 0 && lines.every((l) => /\[no test files\]/.test(l))) return c;
    return null;
  }
  c.total = c.passed + c.failed + c.skipped;
  return c;
};

const generic: Parser = (text) => {
  // The last line that names a passed count: "12 passed, 1 failed", "Passed: 3, Failed: 0", "5 tests passed".
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const pairs = [
      ...line.matchAll(
        /(\d+)\s+(?:tests?\s+)?(passed|passing|failed|failing|failures?|errors?|skipped|pending|ignored)\b|\b(passed|failed|skipped):\s*(\d+)/gi,
      ),
    ];
    if (!pairs.some((p) => /^pass/i.test(p[2] ?? p[3] ?? ''))) continue;
    const c: TestCounts = { runner: 'generic', passed: 0, failed: 0, skipped: 0, total: 0 };
    for (const p of pairs) {
      const n = Number(p[1] ?? p[4]);
      const word = (p[2] ?? p[3]!).toLowerCase();
      if (word.startsWith('pass')) c.passed += n;
      else if (word.startsWith('fail') || word.startsWith('error')) c.failed += n;
      else c.skipped += n;
    }
    c.total = c.passed + c.failed + c.skipped;
    return c;
  }
  return null;
};

const PARSERS: Parser[] = [vitest, jest, nodeTest, cargo, pytest, mocha, goTest, generic];

/** The test counts the output reports, or null when it reports none the parsers recognise. */
export function parseTestCounts(output: string): TestCounts | null {
  const text = stripAnsi(output).replace(/\r\n?/g, '\n');
  for (const parse of PARSERS) {
    const c = parse(text);
    if (c) return c;
  }
  return null;
}

export interface CommandOutcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  timeoutSeconds: number;
}

export interface TestJudgement {
  verdict: TestVerdict;
  reason: string;
}

/**
 * The tests fact. `pass` only when the command exited 0 AND more than zero tests ran (and none failed); zero
 * tests, or counts the server could not read, are `inconclusive`; a non-zero exit, a signal or a timeout is
 * `fail`. `unknown` is for a project without a test command (decided by the caller).
 */
export function judgeTests(outcome: CommandOutcome, counts: TestCounts | null): TestJudgement {
  const shown = counts ? ` (${describeCounts(counts)})` : '';
  if (outcome.timedOut) return { verdict: 'fail', reason: `timed out after ${outcome.timeoutSeconds} s${shown}` };
  if (outcome.exitCode === null)
    return { verdict: 'fail', reason: `killed by ${outcome.signal ?? 'a signal'}${shown}` };
  if (outcome.exitCode !== 0) {
    const what = counts
      ? counts.failed > 0
        ? `${counts.failed} of ${counts.passed + counts.failed} tests failed`
        : counts.passed + counts.failed === 0
          ? 'no tests ran'
          : describeCounts(counts)
      : 'test counts not reported';
    return { verdict: 'fail', reason: `exited with code ${outcome.exitCode} (${what})` };
  }
  if (!counts)
    return {
      verdict: 'inconclusive',
      reason: 'exited 0, but its output did not say how many tests ran (counts unknown)',
    };
  if (counts.failed > 0)
    return {
      verdict: 'fail',
      reason: `exited 0, but its output reports ${counts.failed} failed test(s) (${describeCounts(counts)})`,
    };
  if (counts.passed === 0) {
    return {
      verdict: 'inconclusive',
      reason: counts.skipped > 0 ? `zero tests ran: all ${counts.skipped} were skipped` : 'zero tests ran',
    };
  }
  return { verdict: 'pass', reason: `${describeCounts(counts)}` };
}

export function describeCounts(c: TestCounts): string {
  return `${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped (${c.runner})`;
}
