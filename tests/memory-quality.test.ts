/**
 * Retrieval quality: 60 memories with 32 queries whose right answers are known. The right item must be in the
 * top 3 for at least 90 % of the queries, and first for at least 80 % (through the real tools, with the default
 * ranking). The file-based index this replaced scored 32/32 on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEMORIES, QUERIES } from './fixtures/memory-quality.js';
import { connect, structured, tempProject, type Connected, type TempProject } from './helpers.js';

let p: TempProject;
let c: Connected;
const idOf = new Map<string, string>();

beforeAll(async () => {
  p = tempProject();
  c = await connect(p);
  for (const { key, ...m } of MEMORIES)
    idOf.set(key, structured<{ id: string }>(await c.call('loki_memory_record', m)).id);
});
afterAll(async () => {
  await c.close();
  p.cleanup();
});

describe('retrieval quality', () => {
  it('has a fixture of at least 50 memories and 20 queries with known answers', () => {
    expect(MEMORIES.length).toBeGreaterThanOrEqual(50);
    expect(QUERIES.length).toBeGreaterThanOrEqual(20);
    for (const [, key] of QUERIES) expect(idOf.has(key), key).toBe(true);
  });

  it('puts the right memory in the top 3 for at least 90 % of queries, and first for at least 80 %', async () => {
    const misses: string[] = [];
    let hits = 0;
    let firsts = 0;
    for (const [query, key] of QUERIES) {
      const r = structured<{ results: { id: string }[] }>(
        await c.call('loki_memory_search', { query, limit: 3, scope: 'project' }),
      );
      const at = r.results.findIndex((x) => x.id === idOf.get(key));
      if (at === 0) firsts++;
      if (at >= 0) hits++;
      else misses.push(`${query} -> wanted ${key}`);
    }
    const rate = hits / QUERIES.length;
    const first = firsts / QUERIES.length;
    process.stderr.write(
      `retrieval quality: top-3 ${hits}/${QUERIES.length}, first ${firsts}/${QUERIES.length}${misses.length ? `; misses: ${misses.join('; ')}` : ''}\n`,
    );
    expect(rate, `top-3 hit rate ${(rate * 100).toFixed(1)} %; misses:\n${misses.join('\n')}`).toBeGreaterThanOrEqual(
      0.9,
    );
    expect(first, `first-place rate ${(first * 100).toFixed(1)} %`).toBeGreaterThanOrEqual(0.8);
  });

  it('is deterministic: the same query gives the same order', async () => {
    const a = await c.call('loki_memory_search', { query: 'tests flaky in ci', limit: 10 });
    const b = await c.call('loki_memory_search', { query: 'tests flaky in ci', limit: 10 });
    expect(a.structuredContent).toEqual(b.structuredContent);
  });
});
