/**
 * Bad arguments to every tool: an isError result that names the offending field, the handler never runs, and
 * nothing changes on disk, git's object store included (the project has work not yet committed). The table must
 * cover every registered tool, so a new tool cannot skip it. Refusals in a project with no .loki/ yet leave no
 * .loki/ behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_TOOLS } from '../mcp-server/src/tools/index.js';
import { connect, snapshot, tempProject, text, type Connected, type TempProject } from './helpers.js';

type Case = [args: Record<string, unknown>, mentions: RegExp];

const CASES: Record<string, Case[]> = {
  loki_start: [
    [{ spec: 42 }, /spec/],
    [{ spec: ['a.md'] }, /spec/],
    [{ specText: { text: 'x' } }, /specText/],
    [{ tier: 'huge' }, /tier/],
    [{ restart: 'yes' }, /restart/],
    [{ bogus: true }, /bogus/],
    [{ spec: '../outside.md' }, /spec.*\.\./],
    [{ spec: '/etc/passwd' }, /spec.*absolute/],
    [{ spec: 'a\u0000b.md' }, /spec.*NUL/],
    [{ spec: 'x'.repeat(5000) }, /spec/],
    [{ spec: 'docs/../../x.md' }, /spec/],
    [{ spec: '.loki-evil/x.md' }, /does not exist/],
  ],
  loki_status: [
    [{ peek: 'yes' }, /peek/],
    [{ peek: 1 }, /peek/],
    [{ verbose: true }, /verbose/],
  ],
  loki_task_add: [
    [{}, /tasks/],
    [{ tasks: [] }, /tasks/],
    [{ tasks: [{}] }, /title/],
    [{ tasks: [{ title: '' }] }, /title/],
    [{ tasks: [{ title: 'x', priority: 'urgent' }] }, /priority/],
    [{ tasks: [{ title: 'x', phase: 'development' }] }, /phase/],
    [{ tasks: [{ title: 'x', id: '../evil' }] }, /id/],
    [{ tasks: [{ title: 'x', id: 'UPPER' }] }, /id/],
    [{ tasks: [{ title: 'x', dependencies: ['nope'] }] }, /unknown task nope/],
    [{ tasks: [{ title: 'x', dependencies: 'a' }] }, /dependencies/],
    [
      {
        tasks: [
          { id: 'a', title: 'x', dependencies: ['b'] },
          { id: 'b', title: 'y', dependencies: ['a'] },
        ],
      },
      /cycle: a -> b -> a/,
    ],
    [{ tasks: [{ id: 'a', title: 'x', dependencies: ['a'] }] }, /cycle: a -> a/],
    [
      {
        tasks: [
          { id: 'a', title: 'x' },
          { id: 'a', title: 'y' },
        ],
      },
      /twice/,
    ],
    [{ tasks: [{ id: 't1', title: 'different content' }] }, /already exists/],
    [{ tasks: [{ title: 'x', extra: 1 }] }, /extra/],
    [{ tasks: Array.from({ length: 201 }, (_, i) => ({ title: `t${i}` })) }, /tasks/],
  ],
  loki_task_list: [
    [{ status: 'pending' }, /status/],
    [{ status: ['done'] }, /status/],
    [{ limit: 0 }, /limit/],
    [{ limit: 1000 }, /limit/],
    [{ ids: [] }, /ids/],
    [{ ids: ['../x'] }, /ids/],
    [{ priority: 'p1' }, /priority/],
  ],
  loki_task_claim: [
    [{ taskId: 'nope' }, /no task "nope"/],
    [{ taskId: 'A B' }, /taskId/],
    [{ phase: 'qa' }, /phase/],
    [{ agent: '' }, /agent/],
    [{ lease: 5 }, /lease/],
  ],
  loki_task_complete: [
    [{ id: 't1' }, /token/],
    [{ id: 't1', token: 'x' }, /summary/],
    [{ id: 't1', token: 'forged', summary: 'done' }, /never held t1/],
    [{ id: 'nope', token: 'x', summary: 'done' }, /no task "nope"/],
    [{ id: 't1', token: 'x', summary: 'done', evidence: 'a' }, /evidence/],
    [{ id: 't1', token: 'x', summary: 'done', claimNext: 'yes' }, /claimNext/],
  ],
  loki_task_fail: [
    [{ id: 't1', token: 'x' }, /error/],
    [{ id: 't1', token: 'forged', error: 'boom' }, /never held t1/],
    [{ id: '', token: 'x', error: 'boom' }, /id/],
  ],
  loki_task_update: [
    [{}, /id/],
    [{ id: 't1' }, /nothing to change/],
    [{ id: 't1', action: 'explode' }, /action/],
    [{ id: 't1', action: 'release' }, /token/],
    [{ id: 't1', action: 'block' }, /reason/],
    [{ id: 't1', action: 'retry' }, /only dead-lettered/],
    [{ id: 't1', action: 'unblock' }, /not blocked/],
    [{ id: 't1', dependencies: ['t1'] }, /cycle: t1 -> t1/],
    [{ id: 't1', dependencies: ['ghost'] }, /unknown task ghost/],
    [{ id: 'nope', title: 'x' }, /no task "nope"/],
    [{ id: 't1', priority: 'urgent' }, /priority/],
  ],
  loki_phase_advance: [
    [{ to: 'NOPE' }, /to/],
    [{ to: 'development' }, /to/],
    [{ reason: 5 }, /reason/],
    [{ reason: 'x'.repeat(3000) }, /reason/],
    [{ force: true }, /force/],
  ],
  loki_verify: [
    [{ only: 'test' }, /only/],
    [{ only: [] }, /only/],
    [{ only: ['tests'] }, /only/],
    [{ only: ['test', 'build', 'lint', 'test'] }, /only/],
    [{ all: true }, /all/],
  ],
  loki_checklist_get: [[{ id: 'x' }, /id/]],
  loki_checklist_set: [
    [{}, /items/],
    [{ items: [] }, /items/],
    [{ items: [{ status: 'met' }] }, /needs `text`/],
    [{ items: [{ id: 'c-nope', status: 'met', evidence: 'long enough evidence' }] }, /no checklist item/],
    [{ items: [{ text: 'an item', check: { kind: 'shell', command: 'rm -rf /' } }] }, /check/],
    [
      { items: [{ text: 'an item', check: { kind: 'http', url: 'http://example.com/', status: 200 } }] },
      /only loopback/,
    ],
    [{ items: [{ text: 'an item', check: { kind: 'command', check: 'deploy' } }] }, /check/],
    [{ items: [{ text: 'an item', waive: 'short' }] }, /reason of at least/],
  ],
  loki_council_convene: [
    [{ reason: 5 }, /reason/],
    [{ extra: true }, /extra/],
  ],
  loki_council_vote: [
    [{}, /council/],
    [{ council: 'k001', seat: 1, vote: 'maybe', rationale: 'long enough text', evidence: ['v0001'] }, /vote/],
    [{ council: 'k001', seat: 10, vote: 'approve', rationale: 'long enough text', evidence: ['v0001'] }, /seat/],
    [{ council: 'k001', seat: 1, vote: 'approve', rationale: 'short', evidence: ['v0001'] }, /rationale/],
    [{ council: 'k001', seat: 1, vote: 'approve', rationale: 'long enough text', evidence: [] }, /evidence/],
    [
      { council: 'k001', seat: 1, vote: 'approve', rationale: 'long enough text', evidence: ['v0001'] },
      /no verification to judge/,
    ],
  ],
  loki_complete: [[{ force: true }, /force/]],
  loki_memory_record: [
    [{}, /layer/],
    [{ layer: 'fact', title: 'x' }, /layer/],
    [{ layer: 'episode' }, /title/],
    [{ layer: 'episode', title: '' }, /title/],
    [{ layer: 'episode', title: 'x'.repeat(201) }, /title/],
    [{ layer: 'episode', title: 'x', outcome: 'great' }, /outcome/],
    [{ layer: 'episode', title: 'x', lessons: 'one' }, /lessons/],
    [{ layer: 'episode', title: 'x', tags: Array(13).fill('t') }, /tags/],
    [{ layer: 'pattern', title: 'x', body: 'y', confidence: 2 }, /confidence/],
    [{ layer: 'episode', title: 'x', phase: 'WHENEVER' }, /phase/],
    [{ layer: 'episode', title: 'x', outcome: 'success', secret: true }, /secret/],
    [{ layer: 'episode', title: 'x' }, /outcome/],
    [{ layer: 'skill', title: 'x' }, /steps/],
  ],
  loki_memory_search: [
    [{ query: 5 }, /query/],
    [{ query: 'x', limit: 0 }, /limit/],
    [{ query: 'x', limit: 21 }, /limit/],
    [{ query: 'x', scope: 'everywhere' }, /scope/],
    [{ query: 'x', detail: 'full' }, /detail/],
    [{ query: 'x', layer: 'solution' }, /layer/],
    [{ query: 'x', fuzzy: true }, /fuzzy/],
    [{}, /query is empty/],
    [{ detail: 'timeline' }, /needs id/],
    [{ detail: 'timeline', id: 'ep-none-00000000' }, /no memory item/],
  ],
  loki_memory_get: [
    [{}, /ids/],
    [{ ids: [] }, /ids/],
    [{ ids: 'ep-x' }, /ids/],
    [{ ids: Array(21).fill('ep-x') }, /ids/],
    [{ ids: ['x'], full: true }, /full/],
  ],
  loki_memory_consolidate: [
    [{ minGroup: 1 }, /minGroup/],
    [{ minGroup: 2.5 }, /minGroup/],
    [{ dryRun: 'yes' }, /dryRun/],
    [{ all: true }, /all/],
  ],
  loki_learn: [
    [{}, /category/],
    [{ category: 'ok' }, /title/],
    [{ category: 'x'.repeat(65), title: 't' }, /category/],
    [{ category: 'ok', title: 't', symptoms: 'one' }, /symptoms/],
    [{ category: 'ok', title: 't', extra: 1 }, /extra/],
  ],
  loki_checkpoint_create: [
    [{ label: '' }, /label/],
    [{ label: 'x'.repeat(201) }, /label/],
    [{ label: 'a\u0000b' }, /label must be one line of plain text: character 2 is the control character U\+0000/],
    [{ label: 'two\nlines' }, /label must be one line/],
    [{ label: 'ok', reason: 'why\u0000' }, /reason must be plain text: character 4 is the control character U\+0000/],
    [{ reason: 5 }, /reason/],
    [{ label: 'ok', extra: 1 }, /extra/],
  ],
  loki_checkpoint_list: [
    [{ kind: 'weird' }, /kind/],
    [{ limit: 0 }, /limit/],
    [{ limit: 101 }, /limit/],
  ],
  loki_rollback: [
    [{}, /target/],
    [{ target: 'latest' }, /code/],
    [{ target: 'cp-1', code: 'yes' }, /code/],
    [{ target: '', code: true }, /target/],
    [{ target: '../x', code: true }, /target must be "latest" or a checkpoint id/],
    [{ target: 'cp-999', code: true }, /no checkpoint "cp-999"/],
    [{ target: 'latest', code: true, force: true }, /force/],
  ],
  loki_skill_load: [
    [{ name: 5 }, /name/],
    [{ name: '' }, /name/],
    [{ name: '../x' }, /name must be a module name.*known: 00-index, /],
    [{ name: 'SKILL' }, /name must be a module name/],
    [{ name: 'skills/testing' }, /name must be a module name/],
    [{ name: 'nope' }, /no skill module "nope"; known: 00-index, .*testing/],
    [{ name: 'testing', full: true }, /full/],
  ],
};

let p: TempProject;
let c: Connected;
beforeAll(async () => {
  p = tempProject({ git: true, files: { 'spec.md': '# Spec\n- a\n' } });
  c = await connect(p);
  await c.call('loki_start', { spec: 'spec.md' });
  // Work not yet in git: a refused call that hashed the working tree would leave its blobs in .git/objects.
  fs.writeFileSync(path.join(p.root, 'untracked.txt'), `not committed ${Date.now()}\n`);
});
afterAll(async () => {
  await c.close();
  p.cleanup();
});

describe('invalid arguments', () => {
  it('has cases for every registered tool', () => {
    expect(Object.keys(CASES).sort()).toEqual(ALL_TOOLS.map((t) => t.name).sort());
  });

  for (const [tool, cases] of Object.entries(CASES)) {
    it.each(cases)(`${tool} %j is refused, names the field and changes nothing`, async (args, mentions) => {
      const before = snapshot(p.root);
      const r = await c.call(tool, args);
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(mentions);
      expect(snapshot(p.root)).toEqual(before);
    });
  }
});

/** Calls refused before any run exists: they must not create .loki/ (nor anything else) on the way. */
const BEFORE_ANY_RUN: [tool: string, args: Record<string, unknown>, mentions: RegExp][] = [
  ['loki_task_complete', { id: 't1', token: 'forged', summary: 'done' }, /no task "t1"/],
  ['loki_task_fail', { id: 't1', token: 'forged', error: 'boom' }, /no task "t1"/],
  ['loki_task_update', { id: 't1', title: 'renamed' }, /no task "t1"/],
  ['loki_task_claim', {}, /loki_start/],
  ['loki_memory_record', { layer: 'episode', title: 'x' }, /needs outcome/],
  ['loki_memory_record', { layer: 'skill', title: 'x' }, /needs steps/],
  ['loki_rollback', { target: 'cp-999', code: true }, /no checkpoint "cp-999"/],
  ['loki_rollback', { target: 'latest', code: false }, /no checkpoint to roll back to yet/],
  ['loki_checkpoint_create', { label: 'a\u0000b' }, /label must be one line/],
];

describe('refused before any run', () => {
  it.each(BEFORE_ANY_RUN)('%s %j is refused and creates nothing', async (tool, args, mentions) => {
    const fresh = tempProject({ git: true, files: { 'spec.md': '# Spec\n- a\n' } });
    fs.writeFileSync(path.join(fresh.root, 'untracked.txt'), 'not committed\n');
    const conn = await connect(fresh);
    try {
      const before = snapshot(fresh.root);
      const r = await conn.call(tool, args);
      expect(r.isError).toBe(true);
      expect(text(r)).toMatch(mentions);
      expect(snapshot(fresh.root)).toEqual(before);
      expect(fs.existsSync(path.join(fresh.root, '.loki'))).toBe(false);
    } finally {
      await conn.close();
      fresh.cleanup();
    }
  });
});
