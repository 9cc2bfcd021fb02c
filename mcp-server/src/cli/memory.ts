/** `loki memory list|search|show|consolidate` and `loki learn list`: the memory, for people. */
import { LAYERS, type Layer } from '../memory/model.js';
import {
  SCOPES,
  consolidateMemory,
  getMemory,
  listMemory,
  searchMemory,
  MAX_LIMIT,
  type Scope,
} from '../memory/service.js';
import { readAllSolutions } from '../memory/solutions.js';
import type { Project } from '../project.js';

import { ago, print, printJson, table } from './output.js';
import { CliError, UsageError } from '../errors.js';

export interface MemoryFlags {
  json?: boolean | undefined;
  layer?: string | undefined;
  scope?: string | undefined;
  limit?: string | undefined;
  category?: string | undefined;
}

export const MEMORY_USAGE =
  'usage: loki memory list|search <query>|show <id>...|consolidate [--layer L] [--scope S] [--limit N] [--json]';

function layerFlag(v: string | undefined): Layer | undefined {
  if (v === undefined) return undefined;
  if (!(LAYERS as readonly string[]).includes(v)) throw new CliError(`--layer must be one of ${LAYERS.join(', ')}`, 2);
  return v as Layer;
}

function scopeFlag(v: string | undefined): Scope | undefined {
  if (v === undefined) return undefined;
  if (!(SCOPES as readonly string[]).includes(v)) throw new CliError(`--scope must be one of ${SCOPES.join(', ')}`, 2);
  return v as Scope;
}

function limitFlag(v: string | undefined, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new CliError(`--limit must be a whole number from 1 to ${max}`, 2);
  return n;
}

const oneLine = (s: string, n = 70) => {
  const t = s.replace(/\s+/g, ' ');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

export async function memoryCommand(project: Project, args: string[], flags: MemoryFlags): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'list': {
        if (rest.length) throw new CliError('usage: loki memory list [--layer L] [--limit N] [--json]', 2);
        const r = listMemory(project, { layer: layerFlag(flags.layer), limit: limitFlag(flags.limit, 1000) ?? 20 });
        if (flags.json) return (printJson(r), 0);
        if (r.total === 0) print('No memories recorded in this project yet.');
        else {
          print(`${r.items.length} of ${r.total} memories, newest first`);
          print(
            table([
              ['id', 'layer', 'outcome', 'recorded', 'title'],
              ...r.items.map((i) => [i.id, i.layer, i.outcome ?? '', ago(i.provenance.at), oneLine(i.title)]),
            ]),
          );
        }
        for (const p of r.problems) print(`Problem  ${p}`);
        return 0;
      }
      case 'search': {
        const query = rest.join(' ').trim();
        if (!query)
          throw new CliError(
            'usage: loki memory search <query> [--layer L] [--scope project|global|both] [--limit N] [--json]',
            2,
          );
        const r = searchMemory(project, {
          query,
          layer: layerFlag(flags.layer),
          scope: scopeFlag(flags.scope),
          limit: limitFlag(flags.limit, MAX_LIMIT) ?? 10,
        });
        if (flags.json) return (printJson(r), 0);
        if (r.results.length === 0) print(`No memories match "${query}".`);
        else
          print(
            table([
              ['id', 'layer', 'score', 'recorded', 'title'],
              ...r.results.map((i) => [i.id, i.layer, String(i.score), ago(i.provenance.at), oneLine(i.title)]),
            ]),
          );
        for (const p of r.problems) print(`Problem  ${p}`);
        return 0;
      }
      case 'show': {
        if (rest.length === 0 || rest.length > MAX_LIMIT)
          throw new CliError(`usage: loki memory show <id> [<id>...] (at most ${MAX_LIMIT}) [--json]`, 2);
        const r = getMemory(project, rest);
        if (flags.json) printJson(r);
        else {
          for (const item of r.items) {
            print(`${item.id}  (${item.layer})`);
            for (const [k, v] of Object.entries(item)) {
              if (k === 'id' || k === 'layer' || v === null || v === '' || (Array.isArray(v) && v.length === 0))
                continue;
              print(`  ${k.padEnd(12)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
            }
          }
          if (r.missing.length) print(`Not found: ${r.missing.join(', ')}`);
        }
        return r.missing.length ? 1 : 0;
      }
      case 'consolidate': {
        if (rest.length) throw new CliError('usage: loki memory consolidate [--json]', 2);
        const r = await consolidateMemory(project, {}, 'cli');
        if (flags.json) return (printJson(r), 0);
        print(
          `Consolidated ${r.considered} episodes into ${r.groups} group(s): ${r.created.length} new, ${r.updated.length} updated, ${r.unchanged.length} unchanged, ${r.superseded.length} superseded pattern(s).`,
        );
        return 0;
      }
      default:
        throw new CliError(MEMORY_USAGE, 2);
    }
  } catch (err) {
    if (err instanceof UsageError) throw new CliError(err.message, 2);
    throw err;
  }
}

export function learnCommand(project: Project, args: string[], flags: MemoryFlags): number {
  if (args[0] !== 'list' || args.length !== 1) throw new CliError('usage: loki learn list [--category C] [--json]', 2);
  const scan = readAllSolutions(project.lokiHome);
  const solutions = scan.solutions.filter((s) => !flags.category || s.category === flags.category);
  if (flags.json) {
    printJson({
      home: project.lokiHome,
      solutions: solutions.map(({ body: _body, ...s }) => s),
      problems: scan.problems,
    });
    return 0;
  }
  if (solutions.length === 0)
    print(`No solutions in ${project.lokiHome}/solutions${flags.category ? ` under ${flags.category}` : ''}.`);
  else print(table([['id', 'updated', 'title'], ...solutions.map((s) => [s.id, ago(s.updated), oneLine(s.title)])]));
  for (const p of scan.problems) print(`Problem  ${p}`);
  return 0;
}
