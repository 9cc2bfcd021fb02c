/**
 * What a verification record means for completion, pure: the reasons completion must be refused (`blocking`)
 * and what the server could not know and must disclose (`gaps`). Each reason is a sentence that says how to fix it.
 */
import type { CheckFact, VerificationRecord } from './record.js';

export interface VerificationFindings {
  blocking: string[];
  gaps: string[];
}

const AGAIN = 'then run loki_verify again';

export function verificationFindings(record: VerificationRecord): VerificationFindings {
  const blocking: string[] = [];
  const gaps: string[] = [];
  for (const c of record.checks) checkFindings(c, blocking, gaps);

  if (record.diff.available && record.diff.filesChanged === 0) {
    blocking.push(
      `Nothing changed since the run's baseline (empty diff, .loki/ excluded): make the changes the spec asks for, ${AGAIN}.`,
    );
  }
  for (const f of record.testFiles.deleted) {
    blocking.push(
      `Test file ${f} was deleted since the baseline: restore it (or move it; a rename is not a deletion), ${AGAIN}.`,
    );
  }
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
      `${file} holds what looks like a secret (${[...e.kinds].join(', ')}) on line ${e.lines.join(', ')}: remove it and read it from the environment or a secret store instead, ${AGAIN}.`,
    );
  }
  const unscanned = record.secrets.skipped.filter(
    (s) => !s.reason.startsWith('binary') && !s.reason.startsWith('not a file'),
  );
  if (unscanned.length > 0) {
    gaps.push(
      `${unscanned.length} changed file(s) were not scanned for secrets (${unscanned
        .slice(0, 5)
        .map((s) => `${s.file}: ${s.reason}`)
        .join('; ')}${unscanned.length > 5 ? '; ...' : ''}).`,
    );
  }
  gaps.push(...record.notes);
  return { blocking, gaps };
}

function checkFindings(c: CheckFact, blocking: string[], gaps: string[]): void {
  const cmd = c.command ? `\`${c.command}\`` : '';
  switch (c.verdict) {
    case 'pass':
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
      if (c.tests && c.tests.passed === 0) {
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
