/** `loki audit verify [--json]`: re-hash the whole chain and compare it with both anchors. */
import type { Project } from '../project.js';
import { print, printJson } from './output.js';

export function auditVerifyCommand(project: Project, json: boolean): number {
  const store = project.existingStore();
  if (!store) {
    if (json) printJson({ ok: true, count: 0, note: 'no .loki/ in this project' });
    else print(`No .loki/ in ${project.root}: nothing to verify.`);
    return 0;
  }
  const r = store.audit.verify();
  if (json) {
    printJson(r);
    return r.ok ? 0 : 1;
  }
  const anchors = r.anchors.map((a) => `${a.label}: ${a.status}${a.count !== null ? ` (${a.count} entries)` : ''}`);
  if (r.ok) {
    print([`Audit log OK: ${r.count} entries, head ${r.head.slice(0, 16)}.`, ...anchors, ...(r.tornTail ? ['Note: the final line was torn by a crash; the next write repairs it.'] : [])].join('\n'));
    return 0;
  }
  print(
    [
      `Audit log BROKEN at entry ${r.firstBreak!.index}: ${r.firstBreak!.reason}`,
      `${r.count} entries verified before the break.`,
      ...anchors,
      ...r.restarts.map((x) => `Restarted at entry ${x.index}: ${x.reason}`),
    ].join('\n'),
  );
  return 1;
}
