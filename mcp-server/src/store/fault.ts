/**
 * Crash fault injection for tests: when LOKI_FAULT names a point, the process SIGKILLs itself there.
 * `LOKI_FAULT=point` kills on the first pass; `LOKI_FAULT=point@N` on the N-th pass.
 * Reading the variable once keeps the cost on hot paths to one comparison.
 */
const spec = process.env.LOKI_FAULT ?? '';
const [faultName, nth] = spec.split('@');
let remaining = nth ? Number.parseInt(nth, 10) : 1;

export function faultPoint(name: string): void {
  if (faultName !== name) return;
  remaining -= 1;
  if (remaining <= 0) process.kill(process.pid, 'SIGKILL');
}
