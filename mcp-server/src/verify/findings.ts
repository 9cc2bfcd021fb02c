/**
 * What a verification record means for completion, pure: the reasons completion must be refused (`blocking`),
 * what the server could not know and must disclose (`gaps`), and what only the council can accept (`toJudge`):
 * tests of the baseline removed or thinned, for a reason the agent stated. Each reason is a sentence that says
 * how to fix it.
 */
import type { CheckFact, VerificationRecord } from './record.js';

export interface VerificationFindings {
  blocking: string[];
  gaps: string[];
  /** Removed or thinned tests with the agent's stated reason: the council's approval accepts them. */
  toJudge: string[];
}

const AGAIN = 'then run loki_verify again';
/** Allowed secret findings named one by one in the gap sentence; the rest are counted. */
const MAX_ALLOWED_LISTED = 10;

export function verificationFindings(record: VerificationRecord): VerificationFindings {
  const blocking: string[] = [];
  const gaps: string[] = [];
  for (const c of record.checks) checkFindings(c, blocking, gaps);

  if (record.diff.available && record.diff.filesChanged === 0) {
    blocking.push(
      `Nothing changed since the run's baseline (empty diff, .loki/ excluded): make the changes the spec asks for, ${AGAIN}.`,
    );
  }
  const toJudge = removedTests(record, blocking);
  for (const s of record.testFiles.newlySkipped) {
    const what = s.markers.map((m) => `${m.marker} ${m.before} -> ${m.now}`).join(', ');
    blocking.push(
      `${s.file} skips more tests than at the baseline (${what}): remove the skip/only markers and make those tests pass, ${AGAIN}.`,
    );
  }
  const byFile = new Map<string, { lines: number[]; kinds: Set<string> }>();
  for (const s of record.secrets.findings) {
    const e = byFile.get(s.file) ?? { lines: [], kinds: new Set<string>() };
    e.lines.push(s.line);
    e.kinds.add(s.kind);
    byFile.set(s.file, e);
  }
  for (const [file, e] of byFile) {
    blocking.push(
      `${file} holds what looks like a secret (${[...e.kinds].join(', ')}) on line ${e.lines.join(', ')}: remove it and read it from the environment or a secret store instead (if it is not a real credential, such as a test fixture, say so in a comment \`loki-allow-secret: <why>\` on that line or the line above; the receipt will list it), ${AGAIN}.`,
    );
  }
  // Allowed findings do not block, but a person must see each one and the reason the agent gave.
  const allowed = record.secrets.allowed ?? [];
  if (allowed.length > 0) {
    const listed = allowed.slice(0, MAX_ALLOWED_LISTED).map((a) => `${a.file}:${a.line} (${a.kind}): ${a.reason}`);
    if (allowed.length > MAX_ALLOWED_LISTED)
      listed.push(`... ${allowed.length - MAX_ALLOWED_LISTED} more in the verification record`);
    gaps.push(`${allowed.length} secret finding(s) were allowed by the agent with a reason: ${listed.join('; ')}.`);
  }
  // Every changed file the scan could not read is disclosed: a binary file is scanned for provider formats, so
  // what remains here (too large, unreadable, a link or submodule, over the file limit) was not looked at.
  const unscanned = record.secrets.skipped;
  if (unscanned.length > 0) {
    gaps.push(
      `${unscanned.length} changed file(s) were not scanned for secrets (${unscanned
        .slice(0, 5)
        .map((s) => `${s.file}: ${s.reason}`)
        .join('; ')}${unscanned.length > 5 ? '; ...' : ''}).`,
    );
  }
  const test = record.checks.find((c) => c.name === 'test');
  if (record.baselineTests?.available && test?.runner?.counted === 'output' && test.verdict !== 'not-run') {
    blocking.push(
      `The baseline's ${record.baselineTests.ran} tests were counted from the runner's report, but the tests now run in a way the server cannot see through (${test.runner.unverified ?? 'runner not identified'}): restore a test script that runs the runner directly, ${AGAIN}.`,
    );
  }
  const harness = record.harness;
  // A harness that did not exist at the baseline (a new project's first test script) is no change to judge.
  if (
    harness &&
    harness.changes.length > 0 &&
    (harness.baselineHadTests || harness.changes.some((c) => c.status !== 'A'))
  ) {
    const list = harness.changes
      .map((c) => `${c.what} (${c.status === 'A' ? 'added' : c.status === 'D' ? 'deleted' : 'changed'})`)
      .join(', ');
    gaps.push(
      `The test harness changed since the baseline: ${list}. The tests ran as these files now say, so the council must judge each change (a script, hook or config can decide the outcome without touching a test).`,
    );
  }
  gaps.push(...record.notes);
  return { blocking, gaps, toJudge };
}

/**
 * Tests of the baseline that no longer run, test files deleted, and test files that assert less: each blocks
 * completion, unless the agent stated why (`testRemovalReason` of loki_verify); then they are for the council to
 * judge, named with the reason, and only its approval lets them through.
 */
function removedTests(record: VerificationRecord, blocking: string[]): string[] {
  const found: string[] = [];
  for (const f of record.testFiles.deleted)
    found.push(`Test file ${f} was deleted since the baseline (a rename or a move is not a deletion).`);
  const gone = record.testsGone;
  if (gone && gone.count > 0) {
    const list = `${gone.ids.slice(0, 10).join(', ')}${gone.count > 10 ? ', ...' : ''}`;
    // Fewer tests than at the baseline: tests were lost. As many or more: most likely renamed or moved.
    found.push(
      gone.nowRan < gone.baselineRan
        ? `${gone.count} test(s) that ran at the baseline no longer run (deleted, renamed out of the runner's glob, emptied, filtered or skipped), and fewer tests run than at the baseline (${gone.nowRan} < ${gone.baselineRan}): ${list}.`
        : `${gone.count} test(s) that ran at the baseline no longer run under their names, while ${gone.nowRan} tests run (${gone.baselineRan} at the baseline): ${list}.`,
    );
  }
  const thinner = record.testFiles.fewerAssertions ?? [];
  if (thinner.length > 0)
    found.push(
      `Test files of the baseline hold fewer assertions than they did: ${thinner
        .map((t) => `${t.file} (${t.before} -> ${t.now})`)
        .join(', ')}; their tests may check less.`,
    );
  if (found.length === 0) return [];
  const reason = record.testRemovalReason;
  if (!reason) {
    blocking.push(
      ...found.map(
        (f) =>
          `${f} Restore what was removed, ${AGAIN}; or, if removing it was right (the spec drops the feature, tests were merged or renamed), run loki_verify again with \`testRemovalReason\` saying why: the council judges it and the receipt shows it (with council.enabled=false no one can accept a reason, so restore them).`,
      ),
    );
    return [];
  }
  return found.map(
    (f) =>
      `${f} The agent's reason: "${reason}". The council's approval accepts this reason; reject if the tests should stay.`,
  );
}

function checkFindings(c: CheckFact, blocking: string[], gaps: string[]): void {
  const cmd = c.command ? `\`${c.command}\`` : '';
  switch (c.verdict) {
    case 'pass':
      if (c.runner?.counted === 'output')
        gaps.push(
          `The tests were counted from their output, which the tested code can print, not from a runner's report: ${c.runner.unverified ?? 'the runner was not identified'} (${c.runner.resolved}). Run a known runner (node --test, vitest, jest, mocha, pytest, go test, cargo test) directly from the test script to make this a fact.`,
        );
      return;
    case 'absent':
      return;
    case 'not-run':
      if (c.name === 'test')
        blocking.push(
          `This verification did not run the tests (\`only\` left them out): run loki_verify without \`only\`.`,
        );
      else
        blocking.push(
          `This verification did not run the ${c.name} check (\`only\` left it out): run loki_verify without \`only\`.`,
        );
      return;
    case 'unknown':
      gaps.push(
        `No test command, so the server cannot say whether the tests pass: set checks.test in .loki/config.yaml.`,
      );
      return;
    case 'fail':
      if (c.timedOut)
        blocking.push(
          `The ${c.name} check ${cmd} ${c.reason}: make it faster or raise checks.timeoutSeconds in .loki/config.yaml, ${AGAIN}.`,
        );
      else if (c.name === 'test')
        blocking.push(
          `Tests failed: ${cmd} ${c.reason}. Fix the failing tests (the output tail is in the verification record), ${AGAIN}.`,
        );
      else blocking.push(`The ${c.name} check failed: ${cmd} ${c.reason}. Fix the errors it reports, ${AGAIN}.`);
      return;
    case 'inconclusive':
      if (c.runner?.reportError) {
        blocking.push(
          `The tests exited 0 but the runner's own report could not be read (${c.runner.reportError}), so the server cannot say which tests ran: run \`${c.runner.resolved}\` yourself to see why (a test that deletes or rewrites files outside the project?), ${AGAIN}.`,
        );
      } else if (c.tests && c.tests.passed === 0) {
        blocking.push(
          `Zero tests ran: ${cmd} ${c.reason}. Add tests that exercise the change (or unskip them), ${AGAIN}.`,
        );
      } else {
        gaps.push(
          `${cmd} exited 0 but the server could not read how many tests ran (counts unknown): use a runner whose summary it reads (vitest, jest, node:test, mocha, pytest, cargo, go test -v) or print "N passed, N failed".`,
        );
      }
      return;
  }
}
