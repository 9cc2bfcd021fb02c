/**
 * Memory logic, tested directly: secret detection, consolidation, ranking (and its SQL twin, evaluated by a real
 * in-memory SQLite), query terms, solution frontmatter.
 */
import { DatabaseSync } from 'node:sqlite';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findSecrets, scrubSecrets, scrubText, shannonEntropy } from '../mcp-server/src/domain/secrets.js';
import { errorSignature, groupEpisodes, planConsolidation } from '../mcp-server/src/memory/consolidate.js';
import type { MemoryItem } from '../mcp-server/src/memory/model.js';
import { ftsQuery } from '../mcp-server/src/memory/items.js';
import {
  MAX_QUERY_TERMS,
  compareRanked,
  finalScore,
  recencyFactor,
  scoreSql,
  searchTerms,
  stem,
} from '../mcp-server/src/memory/rank.js';
import { checkSlug, formatSolution, parseSolution, slugify } from '../mcp-server/src/memory/solutions.js';

describe('findSecrets / scrubText', () => {
  it.each([
    ['aws-access-key', 'key AKIAIOSFODNN7EXAMPLE here'],
    ['github-token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
    ['github-token', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz'],
    ['gitlab-token', 'glpat-AbCdEfGhIjKlMnOpQrSt'],
    ['slack-token', 'xoxp-1234567890-abcdefghij'],
    ['slack-webhook', 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX'],
    ['stripe-key', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'],
    ['anthropic-key', 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz'],
    ['openai-key', 'sk-abcdefghijklmnopqrstuvwxyz012345'],
    ['google-api-key', 'AIzaSyA1234567890abcdefghijklmnopqrstuv'],
    ['google-oauth', 'ya29.a0AfH6SMBx1234567890abcdefghij'],
    ['npm-token', 'npm_abcdefghijklmnopqrstuvwxyz0123456789'],
    ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
    ['private-key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'],
    ['private-key', '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI (cut off, no end line'],
    ['authorization', 'Authorization: Bearer abc123def456ghi789'],
    ['url-credentials', 'redis://default:hunter2pass@cache:6379'],
    ['assignment', 'DB_PASSWORD=correct-horse-battery'],
    ['assignment', '"client_secret": "abc.def.123"'],
    ['assignment', "api_key: 'k-12345abc'"],
    ['high-entropy', 'value Zx8Kq2LmN9pR4tV7wY1bC3dF6gH0jK5s end'],
    ['hex-secret', 'key 4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b'],
  ])('finds %s', (kind, text) => {
    const found = findSecrets(text);
    expect(found.map((f) => f.kind)).toContain(kind);
    expect(scrubText(text).text).toContain(`[REDACTED:${kind}]`);
  });

  it.each([
    'commit 3f2a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a fixed it',
    'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'see src/components/authentication/LoginForm.tsx and node_modules/@modelcontextprotocol/sdk/dist/esm/server/mcp.js',
    'uuid 550e8400-e29b-41d4-a716-446655440000',
    'handleUserAuthenticationRequestCallback and getUserById2FactorAuthenticationHandler',
    'test_user_authentication_flow_v2_retry',
    'token: expired',
    'password: required',
    'max_tokens=4096',
    'password=${DB_PASSWORD} and token=<your-token> and secret=process.env.SECRET',
    'TypeError: Cannot read properties of undefined (reading map)',
    'npm ERR! code ERESOLVE unable to resolve dependency tree',
    'ep-0mwsw47x9-6a805b4c and pt-c-48bfd41076a5c08072f3',
    'b'.repeat(5000),
  ])('keeps %j', (text) => {
    expect(findSecrets(text)).toEqual([]);
  });

  it('scrubs every string of a nested value, keys included, and is idempotent', () => {
    const v = { a: ['x ghp_abcdefghijklmnopqrstuvwxyz0123456789'], b: { 'password=hunter22': 3, n: null, ok: true } };
    const { value, report } = scrubSecrets(v);
    expect(JSON.stringify(value)).not.toMatch(/ghp_|hunter22/);
    expect(report.redacted).toBe(2);
    expect(scrubSecrets(value).report.redacted).toBe(0);
  });

  it('redacts base64 of mostly-zero bytes (long capital runs full of vowels), found by the fuzzer below', () => {
    for (const token of ['AAAAABcANQAPAHEBIY0OKGUCFQCJMugRew', 'AAAAAB+cANQAPAHE/BIY0OKGUCFQCJMugRew'])
      expect(scrubText(`x ${token} y`).text).not.toContain(token);
    for (const name of [
      'getUserById2FactorHandler',
      'parseHTTPResponse2ForXMLRequests',
      'DEFAULT_CONFIGURATION_TIMEOUT_2',
    ])
      expect(scrubText(`x ${name} y`).text).toContain(name);
  });

  it('never lets a random 24+ character base64 token through (fuzzed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 64 }), (bytes) => {
        const token = Buffer.from(bytes).toString('base64').replace(/=+$/, '');
        fc.pre(/[0-9]/.test(token) && /[A-Za-z]/.test(token) && shannonEntropy(token) >= 4.2);
        expect(scrubText(`x ${token} y`).text).not.toContain(token);
      }),
      // Uniform bytes, as keys are made (fast-check's default bias towards small values makes base64 of mostly
      // zero bytes, "AAABcQAAACEA...", which reads as capitalised words), and a fixed seed. About one uniformly
      // random token in 20,000 splits into word-like pieces that looksLikeIdentifier keeps; the scrubber then also
      // asks whether they are spelled like words (readsAsWords), and none of 20 million random tokens was kept
      // (measured). The seed keeps the sample fixed; a change to the scrubber that lets tokens through fails it.
      { numRuns: 2000, seed: 20261206, plugins: [fc.unbiased()] },
    );
  });

  it('stays linear on long adversarial input', () => {
    const inputs = [
      'a'.repeat(20_000),
      `${'password'.repeat(2000)}`,
      `${'x://'.repeat(5000)}`,
      `${'Bearer '.repeat(3000)}`,
    ];
    const t = performance.now();
    for (const s of inputs) scrubText(s);
    expect(performance.now() - t).toBeLessThan(1000);
  });
});

function episode(
  id: string,
  title: string,
  outcome: 'success' | 'failure',
  extra: Partial<MemoryItem> = {},
): MemoryItem {
  return {
    id,
    layer: 'episode',
    title,
    body: '',
    tags: [],
    phase: null,
    taskType: null,
    provenance: { run: 'r-1', task: null, at: '2026-01-01T00:00:00.000Z', source: 'test' },
    outcome,
    errors: [],
    lessons: [],
    files: [],
    when: null,
    antiPattern: false,
    confidence: null,
    steps: [],
    sources: [],
    groupKey: null,
    flags: [],
    ...extra,
  };
}

const PROV = { run: null, task: null, at: '2026-02-02T00:00:00.000Z', source: 'consolidation' };
const EPISODES = [
  episode('ep-001-aaaaaaaa', 'npm install failed', 'failure', { errors: ['npm ERR! code ERESOLVE at /a/b.js:12'] }),
  episode('ep-002-aaaaaaaa', 'dependency install broke', 'failure', {
    errors: ['npm ERR! code ERESOLVE at /c/d.js:99'],
  }),
  episode('ep-003-aaaaaaaa', 'docker layer caching for node builds', 'success', { lessons: ['copy lockfile first'] }),
  episode('ep-004-aaaaaaaa', 'docker layer caching for python builds', 'success', { lessons: ['copy lockfile first'] }),
  episode('ep-005-aaaaaaaa', 'renamed a variable', 'success'),
  episode('ep-006-aaaaaaaa', 'npm install failed again', 'success', { errors: ['npm ERR! code ERESOLVE at /e.js:1'] }),
];

describe('consolidation', () => {
  it('normalises error signatures', () => {
    expect(errorSignature('npm ERR! code ERESOLVE at /a/b.js:12')).toBe(
      errorSignature('npm ERR! code ERESOLVE at /x/y/z.js:999'),
    );
    expect(errorSignature('Timeout after 5000ms for "users"')).toBe(errorSignature("Timeout after 30ms for 'orders'"));
  });

  it('groups by shared error signature and by term similarity, whatever the input order', () => {
    const ids = (g: MemoryItem[][]) => g.map((x) => x.map((e) => e.id));
    const expected = [
      ['ep-001-aaaaaaaa', 'ep-002-aaaaaaaa', 'ep-006-aaaaaaaa'],
      ['ep-003-aaaaaaaa', 'ep-004-aaaaaaaa'],
      ['ep-005-aaaaaaaa'],
    ];
    expect(ids(groupEpisodes(EPISODES))).toEqual(expected);
    fc.assert(
      fc.property(fc.shuffledSubarray(EPISODES, { minLength: EPISODES.length }), (shuffled) => {
        expect(ids(groupEpisodes(shuffled))).toEqual(expected);
      }),
    );
  });

  it('plans linked patterns, anti-patterns for mostly-failed groups, and nothing on a second run', () => {
    const plan = planConsolidation(EPISODES, PROV);
    expect(plan.groups).toBe(2);
    const [anti, pro] = plan.created;
    expect(anti).toMatchObject({
      layer: 'pattern',
      antiPattern: true,
      sources: ['ep-001-aaaaaaaa', 'ep-002-aaaaaaaa', 'ep-006-aaaaaaaa'],
      groupKey: 'ep-001-aaaaaaaa',
    });
    expect(pro).toMatchObject({
      antiPattern: false,
      sources: ['ep-003-aaaaaaaa', 'ep-004-aaaaaaaa'],
      lessons: ['copy lockfile first'],
    });
    expect(anti!.confidence).toBe(0.5); // 2 of 3 failed, 3 episodes: 0.67 * 0.75
    expect(planConsolidation(EPISODES, PROV)).toEqual(plan);
    const again = planConsolidation([...EPISODES, ...plan.created], { ...PROV, at: '2027-01-01T00:00:00.000Z' });
    expect(again).toMatchObject({ created: [], updated: [], superseded: [] });
    expect(again.unchanged.sort()).toEqual(plan.created.map((x) => x.id).sort());
  });

  it('updates a pattern when its group grows, and marks one superseded when its group merges away', () => {
    const first = planConsolidation(EPISODES, PROV);
    const grown = [
      ...EPISODES,
      episode('ep-007-aaaaaaaa', 'docker layer caching for go builds', 'success', { lessons: ['copy lockfile first'] }),
    ];
    const second = planConsolidation([...grown, ...first.created], PROV);
    expect(second.updated.map((x) => x.sources)).toEqual([['ep-003-aaaaaaaa', 'ep-004-aaaaaaaa', 'ep-007-aaaaaaaa']]);
    const orphan = { ...first.created[1]!, id: 'pt-c-0000000000000000dead', groupKey: 'ep-999-gone0000' };
    const third = planConsolidation([...EPISODES, ...first.created, orphan], PROV);
    expect(third.superseded.map((x) => [x.id, x.flags])).toEqual([['pt-c-0000000000000000dead', ['superseded']]]);
    expect(planConsolidation([...EPISODES, ...first.created, ...third.superseded], PROV).superseded).toEqual([]);
  });
});

describe('ranking', () => {
  it('decays with age towards 0.6 and boosts task type, phase and confidence', () => {
    const now = Date.parse('2026-03-01T00:00:00Z');
    expect(recencyFactor('2026-03-01T00:00:00Z', now)).toBe(1);
    expect(recencyFactor('2026-01-30T00:00:00Z', now)).toBeCloseTo(0.8, 5);
    expect(recencyFactor('2020-01-01T00:00:00Z', now)).toBeCloseTo(0.6, 3);
    const base = { id: 'a', at: '2026-03-01T00:00:00Z', taskType: 'bugfix', phase: 'QA', confidence: null };
    expect(finalScore(10, base, { now })).toBe(10);
    expect(finalScore(10, base, { now, taskType: 'BugFix' })).toBe(12.5);
    expect(finalScore(10, base, { now, phase: 'QA' })).toBeCloseTo(11);
    expect(finalScore(10, { ...base, confidence: 1 }, { now })).toBeCloseTo(11.5);
  });

  it('breaks ties by id', () => {
    const xs = [
      { id: 'b', score: 1 },
      { id: 'a', score: 1 },
      { id: 'c', score: 2 },
    ];
    expect(xs.sort(compareRanked).map((x) => x.id)).toEqual(['c', 'a', 'b']);
  });

  it('computes the same score in SQL as in JavaScript', () => {
    const db = new DatabaseSync(':memory:');
    try {
      db.exec('CREATE TABLE m (at TEXT, at_s REAL, task_type TEXT, phase TEXT, confidence REAL)');
      const insert = db.prepare(
        "INSERT INTO m (at, at_s, task_type, phase, confidence) VALUES (?, unixepoch(?, 'subsec'), ?, ?, ?)",
      );
      const now = Date.parse('2026-03-01T12:00:00.000Z');
      const ats = [
        '2026-03-01T12:00:00.000Z',
        '2026-02-14T03:04:05.678Z',
        '2025-01-01T00:00:00.000Z',
        '2026-03-02T00:00:00.000Z',
        'not a date',
      ];
      const items: { at: string; taskType: string | null; phase: string | null; confidence: number | null }[] = [];
      for (const at of ats)
        for (const taskType of [null, 'bugfix', 'BugFix', 'test'])
          for (const phase of [null, 'QA', 'DEVELOPMENT'])
            for (const confidence of [null, 0, 0.42, 1]) {
              items.push({ at, taskType, phase, confidence });
              insert.run(at, at, taskType, phase, confidence);
            }
      const select = db.prepare(`SELECT ${scoreSql(':bm25')} AS score FROM m ORDER BY rowid`);
      for (const ctx of [
        { now },
        { now, taskType: 'bugfix', phase: 'QA' },
        { now, taskType: 'TEST', phase: 'DEVELOPMENT' },
      ]) {
        const scores = select.all({
          bm25: 2.5,
          now: ctx.now / 1000,
          task_type: ctx.taskType ?? null,
          phase: ctx.phase ?? null,
        }) as { score: number }[];
        expect(scores).toHaveLength(items.length);
        items.forEach((item, i) =>
          expect(scores[i]!.score, JSON.stringify({ item, ctx })).toBeCloseTo(
            finalScore(2.5, { id: 'x', ...item }, ctx),
            9,
          ),
        );
      }
    } finally {
      db.close();
    }
  });

  it('takes the words of a query, each once, without stop words, and quotes them for FTS5', () => {
    expect(searchTerms('How do I fix the "EADDRINUSE" error in Vitest? vitest, port-3000')).toEqual([
      'fix',
      'eaddrinuse',
      'error',
      'vitest',
      'port',
      '3000',
    ]);
    expect(searchTerms('Ça marche, naïve café')).toEqual(['ça', 'marche', 'naïve', 'café']);
    expect(searchTerms('the a of x')).toEqual([]);
    expect(searchTerms(Array.from({ length: 100 }, (_, i) => `w${i}`).join(' '))).toHaveLength(MAX_QUERY_TERMS);
    expect(ftsQuery(['fix', 'eaddrinuse', '3000'])).toBe('"fix" OR "eaddrinuse"* OR "3000"*');
    // The split leaves no quote in a term; were one there, it would stay inside its string.
    expect(ftsQuery(['a"b'])).toBe('"a""b"');
  });

  it('stems plurals and verb forms the same way', () => {
    expect(stem('migrations')).toBe(stem('migration'));
    expect(stem('failed')).toBe(stem('fail'));
    expect(stem('queries')).toBe('query');
    expect(stem('status')).toBe('status');
  });
});

describe('solution frontmatter', () => {
  const data = {
    title: 'A: tricky "title" # with symbols',
    tags: ['esm', 'build'],
    symptoms: ['TypeError: x is not a function', '- looks like a list item'],
    root_cause: 'multi\nline: cause',
    prevention: 'yes',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-02T00:00:00.000Z',
    project: null,
  };

  it('round-trips through gray-matter and the yaml package', () => {
    const text = formatSolution(data, '## Body\n\ntext\n');
    expect(text.startsWith('---\n')).toBe(true);
    const back = parseSolution(text);
    expect(back).toEqual({ value: { data, body: '## Body\n\ntext\n' } });
  });

  it('rejects unknown keys, wrong types, missing frontmatter and non-YAML engines', () => {
    expect(
      parseSolution(formatSolution(data, 'x').replace('prevention: yes', 'prevention: yes\nextra: 1')),
    ).toMatchObject({ problem: expect.stringMatching(/extra|Unrecognized/) });
    expect(parseSolution('---\ntitle: 5\n---\n')).toMatchObject({ problem: expect.stringMatching(/title/) });
    expect(parseSolution('# no frontmatter\n')).toMatchObject({
      problem: expect.stringMatching(/no YAML frontmatter/),
    });
    expect(parseSolution('---json\n{"title":"x"}\n---\n')).toMatchObject({
      problem: expect.stringMatching(/only YAML/),
    });
    expect(parseSolution('---\na: &a [*a]\n---\n')).toHaveProperty('problem');
  });

  it('validates and derives slugs', () => {
    expect(slugify('Fix: ESM + CJS interop (Node 20)!')).toBe('fix-esm-cjs-interop-node-20');
    expect(slugify('Ça marche')).toBe('ca-marche');
    expect(slugify('!!!')).toBe('solution');
    for (const bad of ['..', '../x', 'a/b', 'A', 'a_b', 'a--b', '-a', 'a-', '', 'x'.repeat(65), 'caf\u00e9', 'nul'])
      expect(() => checkSlug(bad, 'slug'), bad).toThrow(/slug/);
    expect(checkSlug('build-errors', 'category')).toBe('build-errors');
  });
});
