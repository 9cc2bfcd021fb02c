/** `loki checkpoint [label]` and `loki rollback list|latest|to <id> [--code]`: checkpoints, for people. */
import { readCatalog } from '../checkpoints/catalog.js';
import { createCheckpoint } from '../checkpoints/create.js';
import { checkpointRow } from '../checkpoints/records.js';
import { rollback } from '../checkpoints/rollback.js';
import { selectLatest } from '../domain/checkpoints.js';
import { CliError } from '../errors.js';
import type { Project } from '../project.js';
import { ago, print, printJson, table } from './output.js';

const ROLLBACK_USAGE =
  'usage: loki rollback list [--json] | loki rollback latest [--code] | loki rollback to <id> [--code]';

export function checkpointCommand(project: Project, args: string[], json: boolean): number {
  if (args.length > 1) throw new CliError('usage: loki checkpoint [label] (quote a label with spaces)', 2);
  const out = createCheckpoint(project, {
    kind: 'manual',
    trigger: 'manual',
    label: args[0]?.trim() || 'manual checkpoint',
    reason: null,
  });
  if (!('created' in out)) throw new Error('internal: a manual checkpoint is never coalesced');
  const row = checkpointRow(out.created);
  if (json) printJson(row);
  else
    print(
      `Checkpoint ${row.id} "${row.label}" (${row.scope}${row.note ? `: ${row.note}` : ''}). Return to it with: loki rollback to ${row.id}${row.scope === 'code+state' ? ' --code' : ''}`,
    );
  return 0;
}

export function rollbackCommand(project: Project, args: string[], opts: { json: boolean; code: boolean }): number {
  const [sub, id, ...extra] = args;
  if (sub === 'list' && id === undefined) return listCommand(project, opts.json);
  const target =
    sub === 'latest' && id === undefined
      ? 'latest'
      : sub === 'to' && id !== undefined && extra.length === 0
        ? id
        : undefined;
  if (target === undefined) throw new CliError(ROLLBACK_USAGE, 2);
  const r = rollback(project, target, opts.code);
  if (opts.json) {
    printJson(r);
    return 0;
  }
  const counts = (s: { added: number; modified: number; removed: number }) =>
    `${s.added} added, ${s.modified} modified, ${s.removed} removed`;
  print(
    [
      `${r.resumed ? 'Finished the interrupted rollback' : 'Rolled back'} to ${r.target} "${r.label}" (${r.scope}).`,
      r.changes.code
        ? `Files: ${counts(r.changes.code)}${r.changes.code.paths.length ? `\n${r.changes.code.paths.map((p) => `  ${p}`).join('\n')}${r.changes.code.truncated ? '\n  ...' : ''}` : ''}`
        : '',
      `State: ${counts(r.changes.state)}.`,
      r.note ? `Note: ${r.note}.` : '',
      `Pre-rollback checkpoint: ${r.preRollback}. Undo with: loki rollback to ${r.preRollback}${r.codeRestored ? ' --code' : ''}`,
    ]
      .filter(Boolean)
      .join('\n'),
  );
  return 0;
}

function listCommand(project: Project, json: boolean): number {
  const store = project.existingStore();
  const catalog = store ? readCatalog(store) : { records: [], damaged: [] };
  const rows = [...catalog.records].reverse().map(checkpointRow);
  const latest = selectLatest(catalog.records)?.id ?? null;
  if (json) {
    printJson({ latest, checkpoints: rows, damaged: catalog.damaged });
    return 0;
  }
  if (rows.length === 0 && catalog.damaged.length === 0) {
    print('No checkpoints yet (`loki checkpoint [label]` takes one).');
    return 0;
  }
  print(
    table([
      ['id', 'kind', 'when', 'phase', 'scope', 'label'],
      ...rows.map((r) => [
        `${r.id}${r.id === latest ? '*' : ''}`,
        r.kind === 'auto' ? `auto/${r.trigger}` : r.kind,
        ago(r.createdAt),
        r.phase ?? '-',
        r.scope,
        r.label,
      ]),
    ]),
  );
  for (const d of catalog.damaged) print(`${d.id} DAMAGED: ${d.problem}`);
  if (latest) print(`* latest: what \`loki rollback latest\` restores`);
  return 0;
}
