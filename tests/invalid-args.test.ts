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
