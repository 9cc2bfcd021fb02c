/**
 * Every `LOKI_*` environment variable loki-mode reads, in one list: the settings' overrides (settings.ts) and the
 * others below. `loki config` names any other `LOKI_*` variable it finds, with the closest known name: a typo such
 * as LOKI_COUNCIL_SZE=4 would otherwise be ignored in silence. tests/cli-quality.test.ts checks that every
 * `LOKI_*` name read in mcp-server/src, plugin/ and scripts/ is on this list, so the list cannot fall behind.
 */
import { editDistance } from './load.js';
import { SETTINGS } from './settings.js';

/** Variables read outside the settings table, with what they do (docs/configuration.md lists them). */
export const OTHER_ENV: Readonly<Record<string, string>> = {
  LOKI_HOME:
    'where cross-project data lives: audit anchors, solutions, held-out sets, the compile cache (default `~/.loki`)',
  LOKI_PROJECT_DIR: 'the project root, when `--project-dir` is not given',
  LOKI_LOG_LEVEL: 'how much the server and hooks log on stderr: error, warn (default), info or debug',
  LOKI_NO_CODE_CACHE: '`1` turns off the start-up compile cache',
  LOKI_HELD_OUT_SEED:
    'a fixed seed for choosing the held-out checklist items (tests, reproducible demos; the receipt says so)',
  LOKI_PLUGIN_PACKAGE: 'what the Claude Code plugin installs in place of the published package (a tarball)',
  LOKI_DASHBOARD_TOKEN:
    "the dashboard's operator token (read and control; 16 characters at least), in place of the one kept in `$LOKI_HOME/dashboard/tokens.json`",
  LOKI_DASHBOARD_READ_TOKEN: "the dashboard's read-only token, in place of the kept one",
  LOKI_TLS_CERT: 'a PEM certificate: `loki dashboard` serves HTTPS with it (with LOKI_TLS_KEY)',
  LOKI_TLS_KEY: 'the PEM private key of LOKI_TLS_CERT',
  LOKI_ALERT_TRIGGER:
    'set (not read) for `notify.command`: what fired, `context`, `budget`, `task-failures` or `council-rejected`',
  LOKI_ALERT_LEVEL: 'set (not read) for `notify.command`: `warning` or `critical`',
  LOKI_ALERT_MESSAGE: 'set (not read) for `notify.command`: the alert in a sentence, with the fix',
};

/** Read only by the build, the tests and the bench of loki-mode itself: known, so never reported, but not documented. */
export const DEVELOPMENT_ENV: readonly string[] = [
  'LOKI_FAULT',
  'LOKI_NO_MINIFY',
  'LOKI_SOURCEMAP',
  'LOKI_BUNDLE',
  'LOKI_TEST_BUNDLE',
  'LOKI_VIA',
  'LOKI_SHOW_PATH',
  'LOKI_E2E_KEEP',
];

export const KNOWN_ENV: readonly string[] = [
  ...SETTINGS.flatMap((s) => (s.env ? [s.env] : [])),
  ...Object.keys(OTHER_ENV),
  ...DEVELOPMENT_ENV,
];

export interface UnknownEnv {
  name: string;
  /** The closest known name, when one is close enough to be a typo of it. */
  suggestion: string | null;
}

/** The `LOKI_*` variables of `env` that loki-mode does not read, each with the known name it most likely meant. */
export function unknownLokiEnv(env: NodeJS.ProcessEnv): UnknownEnv[] {
  const known = new Set(KNOWN_ENV);
  return Object.keys(env)
    .filter((name) => name.startsWith('LOKI_') && !known.has(name))
    .sort()
    .map((name) => ({ name, suggestion: closestEnv(name) }));
}

function closestEnv(name: string): string | null {
  let best: { name: string; d: number } | null = null;
  for (const k of KNOWN_ENV) {
    const d = editDistance(name, k);
    if (!best || d < best.d) best = { name: k, d };
  }
  // The common prefix is long, so a third of what follows it may differ: SZE for SIZE, ITERATION for ITERATIONS.
  return best && best.d <= Math.max(2, Math.floor((name.length - 'LOKI_'.length) / 3)) ? best.name : null;
}
