/**
 * `loki config [--json]`: every setting with its effective value and where it came from. Exits 1 on a problem, and
 * on a `LOKI_*` variable loki-mode does not read: the person meant something by it (LOKI_COUNCIL_SZE=4), and the
 * run would go ahead without it.
 */
import type { Project } from '../project.js';
import { unknownLokiEnv } from '../config/env-names.js';
import { SETTINGS } from '../config/settings.js';
import { paint, print, printJson, table } from './output.js';

export function configCommand(project: Project, json: boolean): number {
  const c = project.effectiveConfig();
  const rows = SETTINGS.map((s) => ({
    key: s.key,
    value: c.values.get(s.key) ?? null,
    source: c.sources.get(s.key)!,
    env: s.env ?? null,
    description: s.description,
  }));
  const unknown = unknownLokiEnv(process.env).map((u) => ({
    ...u,
    problem: `${u.name} is not a variable loki reads${u.suggestion ? `: did you mean ${u.suggestion}?` : ''} (it has no effect; unset it${u.suggestion ? ` or rename it to ${u.suggestion}` : ''})`,
  }));
  const failed = c.problems.length > 0 || unknown.length > 0;
  if (json) {
    printJson({ settings: rows, problems: c.problems, unknownEnv: unknown });
    return failed ? 1 : 0;
  }
  const show = (v: unknown) =>
    v === null ? '(unset)' : Array.isArray(v) ? (v.length ? v.join(',') : '(none)') : String(v);
  print(
    table([['setting', 'value', 'source', 'env'], ...rows.map((r) => [r.key, show(r.value), r.source, r.env ?? ''])]),
  );
  for (const p of c.problems) print(`${paint('red', 'Problem:')} ${p}`);
  for (const u of unknown) print(`${paint('red', 'Unknown:')} ${u.problem}`);
  return failed ? 1 : 0;
}
