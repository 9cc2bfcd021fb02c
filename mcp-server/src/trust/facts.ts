/** The latest verification of a run, as the facts the gate, the council and the receipt judge. */
import type { VerificationFacts } from '../domain/evidence.js';
import type { Project } from '../project.js';
import { verificationFindings } from '../verify/findings.js';
import { latestVerification } from '../verify/index.js';
import type { VerificationRecord } from '../verify/record.js';

export function latestFacts(project: Project, runId: string): VerificationFacts | null {
  const record = latestVerification(project, runId);
  return record ? toFacts(record) : null;
}

export function toFacts(r: VerificationRecord): VerificationFacts {
  const { blocking, gaps, toJudge } = verificationFindings(r);
  const test = r.checks.find((c) => c.name === 'test');
  const counts = test?.tests ?? null;
  return {
    id: r.id,
    at: r.finishedAt,
    codeState: r.codeState,
    checks: r.checks
      .filter((c) => c.command !== null && c.verdict !== 'not-run')
      .map((c) => ({
        name: c.name,
        command: c.command!,
        exitCode: c.exitCode,
        ok: c.verdict === 'pass',
        durationMs: c.durationMs ?? 0,
        detail: c.reason,
      })),
    tests: {
      verdict:
        !test || test.verdict === 'absent' || test.verdict === 'unknown'
          ? 'unknown'
          : test.verdict === 'not-run'
            ? 'unknown'
            : test.verdict,
      passed: counts?.passed ?? null,
      failed: counts?.failed ?? null,
      skipped: counts?.skipped ?? null,
      detail: test?.reason ?? 'no test command',
    },
    diff: r.diff.available
      ? { files: r.diff.filesChanged, insertions: r.diff.insertions, deletions: r.diff.deletions }
      : null,
    blocking,
    gaps,
    toJudge,
  };
}
