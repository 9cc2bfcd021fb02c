/**
 * Test files and skipped tests, by the conventions of each ecosystem. Pure: paths and file contents in, facts out.
 *
 * A test is "newly skipped" when a file holds more of some skip marker than it did at the run's baseline
 * (a file that did not exist then counts as zero). `.only` is a marker too: it silently skips every other test.
 */

type Lang = 'js' | 'py' | 'go' | 'rust';

const JS_EXT = /\.(?:[cm]?[jt]sx?)$/;

/** True when the path (repository-relative, "/" separated) is a test file by its ecosystem's conventions. */
export function isTestFile(file: string): boolean {
  const parts = file.split('/');
  const base = parts[parts.length - 1]!;
  const dirs = parts.slice(0, -1);
  if (JS_EXT.test(base)) {
    return (
      /\.(?:test|spec)\.[cm]?[jt]sx?$/.test(base) ||
      dirs.some((d) => d === '__tests__' || d === 'test' || d === 'tests')
    );
  }
  if (base.endsWith('.py')) return /^test_.*\.py$/.test(base) || /_test\.py$/.test(base) || base === 'conftest.py';
  if (base.endsWith('.go')) return base.endsWith('_test.go');
  if (base.endsWith('.rs')) return dirs[0] === 'tests' || dirs.includes('tests');
  return false;
}

function langOf(file: string): Lang | null {
  if (JS_EXT.test(file)) return 'js';
  if (file.endsWith('.py')) return 'py';
  if (file.endsWith('.go')) return 'go';
  if (file.endsWith('.rs')) return 'rust';
  return null;
}

/**
 * Files whose skip markers are compared: test files, plus every Rust source file (Rust unit tests live in
 * `src/` next to the code, marked `#[ignore]`).
 */
export function mayHoldTests(file: string): boolean {
  return isTestFile(file) || file.endsWith('.rs');
}

const MARKERS: Record<Lang, readonly [name: string, re: RegExp][]> = {
  js: [
    ['.skip', /\b(?:it|test|describe|suite|context|bench)\.skip(?:If)?\s*[(`]/g],
    ['.todo', /\b(?:it|test|describe)\.todo\s*\(/g],
    ['xit/xdescribe', /(?<![\w.$])(?:xit|xdescribe|xtest|xcontext|xspecify)\s*\(/g],
    ['.only', /\b(?:it|test|describe|suite|context)\.only\s*\(/g],
    ['fit/fdescribe', /(?<![\w.$])(?:fit|fdescribe)\s*\(/g],
    ['{ skip }', /[{,]\s*(?:skip|todo)\s*:\s*(?:true|['"`])/g],
    ['t.skip()', /\bt\.(?:skip|todo)\s*\(/g],
  ],
  py: [
    ['@pytest.mark.skip', /@pytest\.mark\.(?:skip|skipif)\b/g],
    ['@pytest.mark.xfail', /@pytest\.mark\.xfail\b/g],
    ['pytest.skip()', /\bpytest\.skip\s*\(/g],
    ['@unittest.skip', /@unittest\.skip(?:If|Unless)?\b/g],
    ['skipTest()', /\.skipTest\s*\(/g],
  ],
  go: [['t.Skip()', /\b[tb]\.Skip(?:f|Now)?\s*\(/g]],
  rust: [['#[ignore]', /#\[ignore\b/g]],
};

/** Count of each skip marker in a file's text (markers absent from the file are omitted). */
export function skipMarkerCounts(file: string, text: string): Record<string, number> {
  const lang = langOf(file);
  const out: Record<string, number> = {};
  if (!lang) return out;
  for (const [name, re] of MARKERS[lang]) {
    re.lastIndex = 0;
    const n = [...text.matchAll(re)].length;
    if (n > 0) out[name] = n;
  }
  return out;
}

export interface NewlySkipped {
  file: string;
  /** Each marker that grew, with its count at the baseline and now. */
  markers: { marker: string; before: number; now: number }[];
}

/** The markers that grew between the baseline text (null: the file is new) and the current text. */
export function newlySkipped(file: string, baselineText: string | null, currentText: string): NewlySkipped | null {
  const before = baselineText === null ? {} : skipMarkerCounts(file, baselineText);
  const now = skipMarkerCounts(file, currentText);
  const markers = Object.entries(now)
    .filter(([name, n]) => n > (before[name] ?? 0))
    .map(([marker, n]) => ({ marker, before: before[marker] ?? 0, now: n }));
  return markers.length > 0 ? { file, markers } : null;
}

/**
 * Assertions, by the conventions of each language: JS/TS `assert*(`, `assert.x(`, `expect(`; Python `assert`
 * statements and `self.assert*(`; Go `t.Error*`/`t.Fatal*`/`t.Fail*` and testify `assert.`/`require.`; Rust
 * `assert*!`. A count, not a proof: it tells a test file hollowed out (its assertions removed while the tests
 * still run and pass) from one that kept them.
 */
const ASSERTIONS: Record<Lang, RegExp> = {
  js: /\b(?:assert(?:\.\w+)?|expect)\s*\(/g,
  py: /(?:^[ \t]*assert\b|\bself\.assert\w*\s*\()/gm,
  go: /\b(?:[tb]\.(?:Error|Errorf|Fatal|Fatalf|Fail|FailNow)|assert\.\w+|require\.\w+)\s*\(/g,
  rust: /\b(?:assert|assert_eq|assert_ne|debug_assert\w*)!\s*[([]/g,
};

/** The number of assertions in a test file's text (0 for a language it does not know). */
export function assertionCount(file: string, text: string): number {
  const lang = langOf(file);
  if (!lang) return 0;
  return [...withoutComments(lang, text).matchAll(ASSERTIONS[lang])].length;
}

/** The text with its comments blanked, roughly: an assertion commented out is no assertion. */
function withoutComments(lang: Lang, text: string): string {
  if (lang === 'py') return text.replace(/#[^\n]*/g, '');
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

/** Fewer assertions now than at the baseline in a test file that existed then (null: not fewer, or a new file). */
export function fewerAssertions(
  file: string,
  baselineText: string | null,
  currentText: string,
): { file: string; before: number; now: number } | null {
  if (baselineText === null || !isTestFile(file)) return null;
  const before = assertionCount(file, baselineText);
  const now = assertionCount(file, currentText);
  return now < before ? { file, before, now } : null;
}
