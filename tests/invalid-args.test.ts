/**
 * Bad arguments to every tool: an isError result that names the offending field, the handler never runs, and
 * nothing changes on disk. The table must cover every registered tool, so a new tool cannot skip it.
 */
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
  loki_phase_advance: [
    [{ to: 'NOPE' }, /to/],
    [{ to: 'development' }, /to/],
    [{ reason: 5 }, /reason/],
    [{ reason: 'x'.repeat(3000) }, /reason/],
    [{ force: true }, /force/],
  ],
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
};

let p: TempProject;
let c: Connected;
beforeAll(async () => {
  p = tempProject({ git: true, files: { 'spec.md': '# Spec\n- a\n' } });
  c = await connect(p);
  await c.call('loki_start', { spec: 'spec.md' });
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
