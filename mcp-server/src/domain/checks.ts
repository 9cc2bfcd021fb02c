/**
 * Which commands check a project (test, build, lint), detected from the contents of its manifest files. Pure:
 * the caller reads the files and passes their text in. An explicit setting (`checks.test` ... in
 * `.loki/config.yaml`) always wins; an empty setting means "this project has no such check".
 *
 * Detection order, per check: package.json scripts, Makefile targets, Cargo, Go, Python (pytest, ruff, flake8).
 * Scripts and targets the authors wrote beat commands inferred from the toolchain.
 */

export const CHECK_NAMES = ['build', 'test', 'lint'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** The manifest files detection reads, relative to the project root. */
export const PROBE_FILES = [
  'package.json',
  'pnpm-lock.yaml',
  'yarn.lock',
  'bun.lock',
  'bun.lockb',
  'Makefile',
  'makefile',
  'GNUmakefile',
  'Cargo.toml',
  'go.mod',
  'pyproject.toml',
  'pytest.ini',
  'setup.cfg',
  'tox.ini',
] as const;

export interface ProjectProbe {
  /** Text of each PROBE_FILES entry that exists (lockfiles may be given as ''). */
  files: Partial<Record<(typeof PROBE_FILES)[number], string>>;
  /** A `tests/` or `test/` directory holds `test_*.py` or `*_test.py` files. */
  pythonTestFiles: boolean;
}

export interface DetectedCheck {
  command: string;
  /** Where it came from, in words: "package.json scripts.test", "Makefile target test", "go.mod". */
  from: string;
}

export type ConfiguredChecks = Record<CheckName, string | null>;

export interface ResolvedCheck {
  name: CheckName;
  command: string | null;
  source: 'config' | 'detected' | null;
  /** The setting or file the command came from, or why there is none. */
  from: string;
}

/** npm's placeholder test script: not a test command. */
const NPM_PLACEHOLDER = /no test specified/;

/** Detect each check from manifest contents. Missing entries mean nothing was found. */
export function detectChecks(probe: ProjectProbe): Partial<Record<CheckName, DetectedCheck>> {
  const out: Partial<Record<CheckName, DetectedCheck>> = {};
  const detectors = [fromPackageJson, fromMakefile, fromCargo, fromGo, fromPython];
  for (const detect of detectors) {
    const found = detect(probe);
    for (const name of CHECK_NAMES) if (!out[name] && found[name]) out[name] = found[name];
  }
  return out;
}

/** Config first (an empty string disables the check), then detection. */
export function resolveChecks(
  configured: ConfiguredChecks,
  detected: Partial<Record<CheckName, DetectedCheck>>,
): ResolvedCheck[] {
  return CHECK_NAMES.map((name): ResolvedCheck => {
    const set = configured[name];
    if (set !== null) {
      return set.trim() === ''
        ? { name, command: null, source: 'config', from: `checks.${name} is empty in .loki/config.yaml` }
        : { name, command: set.trim(), source: 'config', from: `checks.${name} in .loki/config.yaml` };
    }
    const d = detected[name];
    return d
      ? { name, command: d.command, source: 'detected', from: d.from }
      : { name, command: null, source: null, from: 'none found' };
  });
}

type Found = Partial<Record<CheckName, DetectedCheck>>;

function fromPackageJson(probe: ProjectProbe): Found {
  const text = probe.files['package.json'];
  if (text === undefined) return {};
  let scripts: Record<string, unknown> = {};
  try {
    const pkg = JSON.parse(text) as { scripts?: unknown };
    if (pkg && typeof pkg.scripts === 'object' && pkg.scripts !== null)
      scripts = pkg.scripts as Record<string, unknown>;
  } catch {
    return {};
  }
  const runner =
    probe.files['pnpm-lock.yaml'] !== undefined
      ? 'pnpm'
      : probe.files['yarn.lock'] !== undefined
        ? 'yarn'
        : probe.files['bun.lock'] !== undefined || probe.files['bun.lockb'] !== undefined
          ? 'bun'
          : 'npm';
  const out: Found = {};
  for (const name of CHECK_NAMES) {
    const script = scripts[name];
    if (typeof script !== 'string' || script.trim() === '') continue;
    if (name === 'test' && NPM_PLACEHOLDER.test(script)) continue;
    out[name] = {
      command: name === 'test' ? `${runner} test` : `${runner} run ${name}`,
      from: `package.json scripts.${name}`,
    };
  }
  return out;
}

function fromMakefile(probe: ProjectProbe): Found {
  const file = (['GNUmakefile', 'makefile', 'Makefile'] as const).find((f) => probe.files[f] !== undefined);
  if (!file) return {};
  const text = probe.files[file]!;
  const out: Found = {};
  for (const name of CHECK_NAMES) {
    // A rule `name:` (or `name: deps`), not a variable assignment `name := ...`/`name ?= ...`.
    if (new RegExp(`^${name}\\s*:(?!=)`, 'm').test(text))
      out[name] = { command: `make ${name}`, from: `${file} target ${name}` };
  }
  return out;
}

function fromCargo(probe: ProjectProbe): Found {
  if (probe.files['Cargo.toml'] === undefined) return {};
  // Lint (clippy) is not inferred: it is an optional component, and a missing tool would read as a failed check.
  return { test: { command: 'cargo test', from: 'Cargo.toml' }, build: { command: 'cargo build', from: 'Cargo.toml' } };
}

function fromGo(probe: ProjectProbe): Found {
  if (probe.files['go.mod'] === undefined) return {};
  // -v prints one line per test, which is where the counts come from.
  return {
    test: { command: 'go test -v ./...', from: 'go.mod' },
    build: { command: 'go build ./...', from: 'go.mod' },
    lint: { command: 'go vet ./...', from: 'go.mod' },
  };
}

function fromPython(probe: ProjectProbe): Found {
  const f = probe.files;
  const out: Found = {};
  const pytestFrom =
    f['pytest.ini'] !== undefined
      ? 'pytest.ini'
      : f['pyproject.toml'] !== undefined && /^\[tool\.pytest\.ini_options\]/m.test(f['pyproject.toml'])
        ? 'pyproject.toml [tool.pytest.ini_options]'
        : f['setup.cfg'] !== undefined && /^\[tool:pytest\]/m.test(f['setup.cfg'])
          ? 'setup.cfg [tool:pytest]'
          : f['tox.ini'] !== undefined && /^\[pytest\]/m.test(f['tox.ini'])
            ? 'tox.ini [pytest]'
            : probe.pythonTestFiles
              ? 'test_*.py files under tests/'
              : null;
  if (pytestFrom) out.test = { command: 'python3 -m pytest', from: pytestFrom };
  if (f['pyproject.toml'] !== undefined && /^\[tool\.ruff[\].]/m.test(f['pyproject.toml']))
    out.lint = { command: 'ruff check .', from: 'pyproject.toml [tool.ruff]' };
  else if (
    (f['setup.cfg'] !== undefined && /^\[flake8\]/m.test(f['setup.cfg'])) ||
    (f['tox.ini'] !== undefined && /^\[flake8\]/m.test(f['tox.ini']))
  ) {
    out.lint = { command: 'python3 -m flake8', from: 'a [flake8] section' };
  }
  return out;
}
