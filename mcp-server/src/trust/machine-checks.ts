/**
 * Running a checklist item's machine check. Files are read through the project's path validator; HTTP goes to
 * loopback only; `command` and `tests-pass` read the facts of the latest verification (the server ran those
 * commands itself in loki_verify) rather than running anything new.
 */
import type { CheckResult, MachineCheck } from '../domain/checklist.js';
import type { VerificationFacts } from '../domain/evidence.js';
import { readFileIfExists } from '../store/fsx.js';
import { type SafeDir } from '../store/paths.js';
import { FileTooLargeError, PathError, UsageError } from '../errors.js';

const MAX_CONTAINS_BYTES = 5 * 1024 * 1024;
const HTTP_TIMEOUT_MS = 5_000;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Refuse a check the server would not run, before it is stored. */
export function validateCheck(check: MachineCheck): void {
  if (check.kind === 'http') {
    let url: URL;
    try {
      url = new URL(check.url);
    } catch {
      throw new UsageError(`http check: "${check.url}" is not a URL; give e.g. "http://localhost:3000/health"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`http check: only http(s) URLs are checked, not ${url.protocol}`);
    if (!LOOPBACK.has(url.hostname))
      throw new UsageError(
        `http check: only loopback addresses (localhost, 127.0.0.1, [::1]) are checked, not ${url.hostname}`,
      );
  }
}

export async function runCheck(
  project: SafeDir,
  check: MachineCheck,
  facts: VerificationFacts | null,
  now = new Date().toISOString(),
): Promise<CheckResult> {
  const r = (ok: boolean, detail: string): CheckResult => ({ ok, detail, at: now });
  switch (check.kind) {
    case 'file-exists':
    case 'file-contains': {
      let data: Buffer | undefined;
      try {
        data = readFileIfExists(
          project,
          check.path,
          check.kind === 'file-exists' ? Number.MAX_SAFE_INTEGER : MAX_CONTAINS_BYTES,
        );
      } catch (err) {
        if (err instanceof FileTooLargeError)
          return r(false, `${check.path} is over ${MAX_CONTAINS_BYTES} bytes; check a smaller file`);
        if (err instanceof PathError) return r(false, `${check.path}: ${err.message}`);
        throw err;
      }
      if (data === undefined) return r(false, `${check.path} does not exist`);
      if (check.kind === 'file-exists') return r(true, `${check.path} exists`);
      return data.toString('utf8').includes(check.text)
        ? r(true, `${check.path} contains "${clip(check.text)}"`)
        : r(false, `${check.path} does not contain "${clip(check.text)}"`);
    }
    case 'command': {
      const ran = facts?.checks.find((c) => c.name === check.check);
      if (!facts) return r(false, 'no verification yet: call loki_verify');
      if (!ran)
        return r(
          false,
          `loki_verify ${facts.id} ran no ${check.check} command: run loki_verify without \`only\`, or set checks.${check.check} in .loki/config.yaml if the project has none`,
        );
      return r(ran.ok, `${ran.command} exited ${ran.exitCode ?? 'without a code'} in ${facts.id}`);
    }
    case 'tests-pass':
      if (!facts) return r(false, 'no verification yet: call loki_verify');
      return r(facts.tests.verdict === 'pass', `tests ${facts.tests.verdict} in ${facts.id}: ${facts.tests.detail}`);
    case 'http':
      return httpCheck(check, r);
  }
}

async function httpCheck(
  check: Extract<MachineCheck, { kind: 'http' }>,
  r: (ok: boolean, detail: string) => CheckResult,
): Promise<CheckResult> {
  try {
    validateCheck(check);
  } catch (err) {
    return r(false, (err as Error).message);
  }
  try {
    const res = await fetch(check.url, { redirect: 'manual', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const body = check.contains === undefined ? '' : (await res.text()).slice(0, 1024 * 1024);
    if (res.status !== check.status)
      return r(false, `GET ${check.url} answered ${res.status}, expected ${check.status}`);
    if (check.contains !== undefined && !body.includes(check.contains))
      return r(false, `GET ${check.url} answered ${res.status} without "${clip(check.contains)}"`);
    return r(true, `GET ${check.url} answered ${res.status}`);
  } catch (err) {
    return r(false, `GET ${check.url} failed: ${(err as Error).message} (is the server running?)`);
  }
}

function clip(s: string): string {
  return s.length <= 60 ? s : `${s.slice(0, 59)}…`;
}
