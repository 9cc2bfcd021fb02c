/** `loki config [--json]`: every setting with its effective value and where it came from. */
import type { Project } from '../project.js';
import { SETTINGS } from '../config/settings.js';
import { print, printJson, table } from './output.js';

export function configCommand(project: Project, json: boolean): number {
  const c = project.effectiveConfig();
  const rows = SETTINGS.map((s) => ({
    key: s.key,
    value: c.values.get(s.key) ?? null,
    source: c.sources.get(s.key)!,
    env: s.env ?? null,
    description: s.description,
  }));
  if (json) {
    printJson({ settings: rows, problems: c.problems });
    return c.problems.length ? 1 : 0;
  }
  const show = (v: unknown) =>
    v === null ? '(unset)' : Array.isArray(v) ? (v.length ? v.join(',') : '(none)') : String(v);
  print(
    table([['setting', 'value', 'source', 'env'], ...rows.map((r) => [r.key, show(r.value), r.source, r.env ?? ''])]),
  );
  for (const p of c.problems) print(`Problem: ${p}`);
  return c.problems.length ? 1 : 0;
}
