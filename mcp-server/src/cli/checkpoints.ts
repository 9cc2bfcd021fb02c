/** `loki checkpoint create|list|show` and `loki rollback list|latest|to <id> [--code]`: checkpoints, for people. */
import { readCatalog } from '../checkpoints/catalog.js';
import { createCheckpoint } from '../checkpoints/create.js';
import { checkpointRow } from '../checkpoints/records.js';
import { rollback } from '../checkpoints/rollback.js';
import { selectLatest } from '../domain/checkpoints.js';
import { CliError } from '../errors.js';
import type { Project } from '../project.js';
import { closest } from './commands.js';
import { ago, during, print, printJson, table } from './output.js';

const ROLLBACK_USAGE =
  'usage: loki rollback list [--json] | loki rollback latest [--code] | loki rollback to <id> [--code]';
const CHECKPOINT_USAGE =
  'usage: loki checkpoint create [label] [--json] | loki checkpoint list [--json] | loki checkpoint show <id> [--json]';
const CHECKPOINT_SUBCOMMANDS = ['create', 'list', 'show'];

/**
 * `loki checkpoint create|list|show`. The shorthand `loki checkpoint [LABEL]` still creates one, but a label that is
 * (or nearly is) a subcommand is refused: `loki checkpoint lsit` took a checkpoint named "lsit", which
 * `rollback latest` would then restore, when the person meant to look.
 */
export function checkpointCommand(project: Project, args: string[], json: boolean): number {
  const [sub, ...rest] = args;
  if (sub === 'list') {
    if (rest.length > 0) throw new CliError(CHECKPOINT_USAGE, 2);
    return listCommand(project, json);
  }
  if (sub === 'show') {
    if (rest.length !== 1) throw new CliError('usage: loki checkpoint show <id> [--json]', 2);
    return showCommand(project, rest[0]!, json);
  }
  const labels = sub === 'create' ? rest : args;
  if (labels.length > 1)
    throw new CliError(
      `${CHECKPOINT_USAGE}\n(quote a label with spaces: loki checkpoint create "before the refactor")`,
      2,
    );
  if (sub !== 'create' && sub !== undefined) {
    const meant = closest(sub, CHECKPOINT_SUBCOMMANDS);
    if (meant)
      throw new CliError(
        `did you mean \`loki checkpoint ${meant}\`? Nothing was created; to label a checkpoint "${sub}", run \`loki checkpoint create ${sub}\``,
        2,
      );
  }
  const out = during('Taking a checkpoint', () =>
    createCheckpoint(project, {
      kind: 'manual',
      trigger: 'manual',
      label: labels[0]?.trim() || 'manual checkpoint',
      reason: null,
    }),
  );
  if (!('created' in out)) throw new Error('internal: a manual checkpoint is never coalesced');
  const row = checkpointRow(out.created);
  if (json) printJson(row);
  else
    print(
      `Checkpoint ${row.id} "${row.label}" (${row.scope}${row.note ? `: ${row.note}` : ''}). Return to it with: loki rollback to ${row.id}${row.scope === 'code+state' ? ' --code' : ''}`,
    );
  return 0;
}

function showCommand(project: Project, id: string, json: boolean): number {
  const store = project.existingStore();
  const catalog = store ? readCatalog(store) : { records: [], damaged: [] };
  const damaged = catalog.damaged.find((d) => d.id === id);
  if (damaged)
    throw new CliError(`checkpoint ${id} is damaged: ${damaged.problem}; \`loki doctor\` says what to do`, 1);
  const r = catalog.records.find((x) => x.id === id);
  if (!r) throw new CliError(`no checkpoint "${id}": \`loki checkpoint list\` shows the ids`, 1);
  const row = checkpointRow(r);
  const latest = selectLatest(catalog.records)?.id === r.id;
  if (json) {
    printJson({
      ...row,
      latest,
      reason: r.reason,
      runId: r.runId,
      rollbackTo: r.rollbackTo,
      costMs: r.costMs,
      code: r.code,
      state: r.state,
    });
    return 0;
  }
  const code = r.code.commit
    ? `commit ${r.code.commit.slice(0, 12)}${r.code.branch ? ` (branch ${r.code.branch}${r.code.head ? ` at ${r.code.head.slice(0, 12)}` : ''})` : ''}`
    : `not saved${r.code.note ? ` (${r.code.note})` : ''}`;
  print(
    table([
      ['checkpoint', `${r.id}${latest ? ' (what `loki rollback latest` restores)' : ''}`],
      ['label', r.label],
      ['kind', r.type === 'auto' ? `auto/${r.trigger}` : r.type],
      ['when', `${r.createdAt} (${ago(r.createdAt)})`],
      ['run', r.runId ?? '-'],
      ['phase', r.phase ?? '-'],
      ...(r.reason ? [['reason', r.reason]] : []),
      ...(r.rollbackTo ? [['before', `the rollback to ${r.rollbackTo}`]] : []),
      ['code', code],
      ['state', `${r.state.rows} rows, ${r.state.bytes} bytes`],
      ['restore', `loki rollback to ${r.id}${row.scope === 'code+state' ? ' --code' : ''}`],
    ]),
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
  const r = during(
    `Rolling back to ${target === 'latest' ? 'the latest checkpoint' : target}${opts.code ? ', files and state' : ''}`,
    () => rollback(project, target, opts.code),
  );
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
    print('No checkpoints yet (`loki checkpoint create [label]` takes one).');
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
