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
import { scrubText } from '../domain/secrets.js';
import { judgeTests, parseTestCounts } from '../domain/test-output.js';
import { listNames, readFileIfExists } from '../store/fsx.js';
import { type SafeDir } from '../store/paths.js';
import { outputTail, runCommand } from './command.js';
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

export async function runCheck(c: ResolvedCheck, opts: CheckRunOptions): Promise<CheckFact> {
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
  const r = await runCommand(c.command, { cwd: opts.cwd, timeoutMs: opts.timeoutSeconds * 1000, env: opts.env });
  const base = {
    ...notRun(c, 'fail', ''),
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    durationMs: r.durationMs,
    outputTail: outputTail(r.output),
    outputBytes: r.outputBytes,
  };
  if (r.spawnError) return { ...base, reason: `could not start: ${r.spawnError}` };
  if (c.name === 'test') {
    const tests = parseTestCounts(r.output);
    const j = judgeTests(
      { exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, timeoutSeconds: opts.timeoutSeconds },
      tests,
    );
    return { ...base, verdict: j.verdict, reason: j.reason, tests };
  }
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
