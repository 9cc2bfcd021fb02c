/**
 * The end-to-end checks every host shares: one honest run of the 4-requirement calc spec (tests/e2e/model.mjs
 * follows each result's `Next:` line literally), then assertions on what the server stored and on what the model
 * was shown. Each host's test file calls hostSuite once; the run happens in beforeAll and every `it` reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cannotRun, honestRun, summary, type Host, type Run } from './hosts.mjs';

export const RUN_TIMEOUT_MS = 240_000;

export interface HostLimits {
  /** Most loki tool calls an honest run may take. */
  lokiCalls: number;
  /** Most characters of loki results (as the model saw them) over the run, when the host has a target. */
  lokiResultChars?: number;
}

export const MAX_RESULT_CHARS = 6_000;

export function hostSuite(
  host: Host,
  title: string,
  limits: HostLimits,
  opts: { prematureStop?: boolean; probeGuard?: boolean } = {},
  extra?: (run: () => Run) => void,
): void {
  const why = cannotRun(host);
  describe.skipIf(why !== undefined)(`${title}${why ? ` (skipped: ${why})` : ''}`, () => {
    let run: Run | undefined;
    const current = (): Run => {
      if (!run) throw new Error('the run did not happen');
      return run;
    };
    beforeAll(async () => {
      run = await honestRun(host, { ...opts, timeoutMs: RUN_TIMEOUT_MS });
    }, RUN_TIMEOUT_MS + 30_000);
    afterAll(() => run?.cleanup());

    it('an honest run of the 4-requirement spec ends VERIFIED, the run completed', () => {
      const r = current().report;
      expect(r.receipt, summary(r)).toBe('VERIFIED');
      expect(r.runStatus, summary(r)).toBe('completed');
    });

    it('a model following Next literally is never refused', () => {
      const r = current().report;
      expect(
        r.defects.filter((d) => d.kind === 'refused'),
        summary(r),
      ).toEqual([]);
    });

    it('every loki result ends with a Next line the model can see, naming the call with JSON arguments', () => {
      const r = current().report;
      expect(
        r.defects.filter((d) => d.kind.startsWith('no Next') || d.kind.startsWith('Next names')),
        summary(r),
      ).toEqual([]);
    });

    it(`no loki result over ${MAX_RESULT_CHARS} characters as the model saw it`, () => {
      const r = current().report;
      expect(r.largest?.chars ?? 0, summary(r)).toBeLessThanOrEqual(MAX_RESULT_CHARS);
    });

    it(`at most ${limits.lokiCalls} loki calls${limits.lokiResultChars ? ` and ${limits.lokiResultChars} characters of loki results` : ''}`, () => {
      const r = current().report;
      expect(r.lokiCalls, summary(r)).toBeGreaterThan(0);
      expect(r.lokiCalls, summary(r)).toBeLessThanOrEqual(limits.lokiCalls);
      if (limits.lokiResultChars) expect(r.lokiResultChars, summary(r)).toBeLessThanOrEqual(limits.lokiResultChars);
    });

    it('the host ends by itself and leaves nothing running', () => {
      const r = current().report;
      expect(r.process.timedOut, summary(r)).toBe(false);
      expect(r.leftRunning).toEqual([]);
    });

    extra?.(current);
  });
}
