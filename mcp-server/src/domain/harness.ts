/**
 * The test harness: the files that decide which tests run and how their outcome is reported (test scripts,
 * runner configurations, conftest and its hooks, CI files). A change to one of them since the run's baseline is
 * a fact the council and the receipt show, because it can turn the tests into something else without touching a
 * test file: a test script that prints a passing summary, a conftest hook that reports failures as passes, a
 * runner config that narrows the test glob. Pure: paths and file texts in, facts out.
 */

/** Whole files that belong to the harness, by their path (repository-relative, "/" separated). */
const HARNESS_FILES: readonly RegExp[] = [
  /(^|\/)(vitest|vite|jest|karma|playwright|cypress|ava|wdio)\.config\.[cm]?[jt]s(on)?$/,
  /(^|\/)vitest\.workspace\.[cm]?[jt]s(on)?$/,
  /(^|\/)\.mocharc(\.[a-z]+)?$/,
  /(^|\/)\.(nycrc|c8rc)(\.[a-z]+)?$/,
  /(^|\/)(jest|babel)\.config\.json$/,
  /(^|\/)conftest\.py$/,
  /(^|\/)\.?pytest\.(ini|toml)$/,
  /(^|\/)(babel\.config\.[cm]?js(on)?|\.babelrc(\.[a-z]+)?)$/,
  // Setup files by their usual names (a config can name any file; those it names by other names are not seen).
  /(^|\/)(jest|vitest|test)[.-]setup\.[cm]?[jt]sx?$/,
  /(^|\/)setupTests\.[cm]?[jt]sx?$/,
  /(^|\/)tests?\/(setup|helpers?\/setup)\.[cm]?[jt]sx?$/,
  /(^|\/)tox\.ini$/,
  /(^|\/)noxfile\.py$/,
  /^(GNUmakefile|makefile|Makefile)$/,
  /^\.github\/workflows\/[^/]+\.ya?ml$/,
  /^\.gitlab-ci\.yml$/,
  /^\.circleci\/config\.yml$/,
  /^\.cargo\/config(\.toml)?$/,
];

/** Files of which only a part belongs to the harness: that part is what is compared. */
const PARTIAL: Record<string, (text: string) => string> = {
  'package.json': packageJsonPart,
  'pyproject.toml': (t) => iniSections(t, /^\[tool\.(pytest|coverage)[\].]/),
  'setup.cfg': (t) => iniSections(t, /^\[(tool:pytest|coverage:)/),
};

/** True when `file` may hold harness settings (the whole file, or a part of it). */
export function isHarnessFile(file: string): boolean {
  return HARNESS_FILES.some((re) => re.test(file)) || PARTIAL[baseName(file)] !== undefined;
}

/**
 * The harness part of `file`'s text: the whole text for a harness file, the relevant part of a manifest (the
 * test scripts and runner settings of a package.json, the pytest sections of pyproject.toml), '' when none.
 */
export function harnessPart(file: string, text: string): string {
  const partial = PARTIAL[baseName(file)];
  return partial ? partial(text) : text;
}

export interface HarnessChange {
  path: string;
  status: 'A' | 'M' | 'D';
  /** What changed, in words: "the test scripts of package.json", "conftest.py". */
  what: string;
}

/**
 * The harness changes between two versions of the changed files (null: absent on that side). A manifest whose
 * harness part is the same on both sides (a dependency added to package.json) is no harness change.
 */
export function harnessChanges(
  files: readonly { path: string; before: string | null; after: string | null }[],
): HarnessChange[] {
  const out: HarnessChange[] = [];
  for (const f of files) {
    if (!isHarnessFile(f.path)) continue;
    const before = f.before === null ? null : harnessPart(f.path, f.before);
    const after = f.after === null ? null : harnessPart(f.path, f.after);
    if ((before ?? '') === (after ?? '')) continue;
    const partial = PARTIAL[baseName(f.path)] !== undefined;
    out.push({
      path: f.path,
      status: before === null || before === '' ? 'A' : after === null || after === '' ? 'D' : 'M',
      what: partial ? `the test settings of ${f.path}` : f.path,
    });
  }
  return out;
}

function baseName(file: string): string {
  return file.slice(file.lastIndexOf('/') + 1);
}

/** Keys of package.json that configure a test runner or coverage. */
const PACKAGE_TEST_KEYS = ['jest', 'mocha', 'ava', 'vitest', 'c8', 'nyc'];

/** The scripts a test run goes through (test, pretest, posttest, test:*) and the runners' settings, canonical. */
function packageJsonPart(text: string): string {
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // An unreadable package.json: compared whole, so any change to it counts.
    return text;
  }
  if (!pkg || typeof pkg !== 'object') return text;
  const scripts = (pkg.scripts && typeof pkg.scripts === 'object' ? pkg.scripts : {}) as Record<string, unknown>;
  const part: Record<string, unknown> = {};
  for (const k of Object.keys(scripts).sort()) if (/^(pre|post)?test\b/.test(k)) part[`scripts.${k}`] = scripts[k];
  for (const k of PACKAGE_TEST_KEYS) if (pkg[k] !== undefined) part[k] = pkg[k];
  return Object.keys(part).length ? JSON.stringify(part) : '';
}

/** The sections of an INI-like file whose header matches `header`, with their bodies. */
function iniSections(text: string, header: RegExp): string {
  const out: string[] = [];
  let keep = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*\[/.test(line)) keep = header.test(line.trim());
    if (keep) out.push(line.trimEnd());
  }
  return out.join('\n').trim();
}
