/** `loki memory ...` and `loki learn list`, spawned from dist: output, --json, exit codes. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HELP } from '../mcp-server/src/cli/main.js';
import { DIST, connect, structured, tempProject, type TempProject } from './helpers.js';

const CLI = path.join(DIST, 'loki.js');

let p: TempProject;
afterEach(() => p?.cleanup());

function loki(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p.root, env: p.env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function seed(): Promise<string[]> {
  const c = await connect(p);
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    ids.push(
      structured<{ id: string }>(
        await c.call('loki_memory_record', {
          layer: 'episode',
          title: `yarn berry pnp broke ${i}`,
          outcome: 'failure',
          errors: ['Error: Cannot find module pnpapi'],
          lessons: ['set nodeLinker: node-modules'],
        }),
      ).id,
    );
  }
  ids.push(
    structured<{ id: string }>(
      await c.call('loki_memory_record', {
        layer: 'skill',
        title: 'Tag a release',
        steps: ['git tag', 'git push --tags'],
      }),
    ).id,
  );
  await c.call('loki_learn', {
    category: 'tooling',
    title: 'Yarn PnP and editors',
    symptoms: ['editor cannot resolve imports'],
  });
  await c.close();
  return ids;
}

describe('loki memory / loki learn', () => {
  it('lists in HELP', () => {
    expect(HELP).toMatch(/memory search <query>/);
    expect(HELP).toMatch(/learn list/);
  });

  it('list, search, show and consolidate, for people and as JSON', async () => {
    p = tempProject();
    const ids = await seed();
    const list = loki(['memory', 'list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/3 of 3 memories, newest first/);
    expect(list.out.indexOf(ids[2]!)).toBeLessThan(list.out.indexOf(ids[0]!));
    expect(
      JSON.parse(loki(['memory', 'list', '--layer', 'skill', '--json']).out).items.map((i: { id: string }) => i.id),
    ).toEqual([ids[2]]);

    const search = loki(['memory', 'search', 'yarn', 'pnp']);
    expect(search.code).toBe(0);
    expect(search.out).toMatch(/sol:tooling\/yarn-pnp-and-editors/);
    const json = JSON.parse(loki(['memory', 'search', 'pnpapi', '--scope', 'project', '--json']).out);
    expect(json.results.map((r: { id: string }) => r.id).sort()).toEqual(ids.slice(0, 2).sort());

    const show = loki(['memory', 'show', ids[0]!]);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/nodeLinker: node-modules/);
    expect(loki(['memory', 'show', 'ep-missing-00000000']).code).toBe(1);

    const cons = loki(['memory', 'consolidate']);
    expect(cons.out).toMatch(/Consolidated 2 episodes into 1 group\(s\): 1 new/);
    expect(JSON.parse(loki(['memory', 'consolidate', '--json']).out)).toMatchObject({ created: [], updated: [] });

    const learn = loki(['learn', 'list']);
    expect(learn.out).toMatch(/sol:tooling\/yarn-pnp-and-editors/);
    expect(JSON.parse(loki(['learn', 'list', '--json']).out).solutions[0]).toMatchObject({
      category: 'tooling',
      slug: 'yarn-pnp-and-editors',
    });
  });

  it('exits 2 on usage errors, and creates nothing in a project without .loki/', () => {
    p = tempProject();
    expect(loki(['memory']).code).toBe(2);
    expect(loki(['memory', 'search']).code).toBe(2);
    expect(loki(['memory', 'list', '--layer', 'facts']).err).toMatch(/--layer must be one of episode, pattern, skill/);
    expect(loki(['memory', 'search', 'x', '--scope', 'all']).code).toBe(2);
    expect(loki(['memory', 'search', 'x', '--limit', '0']).code).toBe(2);
    expect(loki(['learn']).code).toBe(2);
    expect(loki(['memory', 'list']).out).toMatch(/No memories recorded/);
    expect(loki(['memory', 'search', 'anything']).code).toBe(0);
    expect(loki(['memory', 'consolidate']).code).toBe(0);
    expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
  });
});
