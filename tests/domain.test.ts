/** Pure domain logic: the phase state machine and complexity-tier detection. */
import { describe, expect, it } from 'vitest';
import {
  EXIT_CRITERIA,
  PHASES,
  TIER_PHASES,
  nextPhase,
  planTransition,
  type PhaseFacts,
} from '../mcp-server/src/domain/phases.js';
import { classifyComplexity, specSignals } from '../mcp-server/src/domain/complexity.js';

const facts = (over: Partial<PhaseFacts> = {}): PhaseFacts => ({
  specRecorded: true,
  gitRepository: true,
  changedFilesSinceBaseline: 3,
  runCompleted: false,
  openTasksInPhase: [],
  ...over,
});

describe('tier lists', () => {
  it('are the 3, 6 and 8 phases of the design, in order', () => {
    expect(TIER_PHASES.simple).toEqual(['BOOTSTRAP', 'DEVELOPMENT', 'QA']);
    expect(TIER_PHASES.standard).toEqual([
      'BOOTSTRAP',
      'DISCOVERY',
      'ARCHITECTURE',
      'DEEPEN_PLAN',
      'DEVELOPMENT',
      'QA',
    ]);
    expect(TIER_PHASES.complex).toEqual(PHASES.filter((p) => p !== 'GROWTH'));
    for (const list of Object.values(TIER_PHASES)) {
      const order = list.map((p) => PHASES.indexOf(p));
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    }
  });

  it('every phase has an exit-criteria entry', () => {
    for (const p of PHASES) expect(Array.isArray(EXIT_CRITERIA[p])).toBe(true);
  });

  it('GROWTH follows the last phase of every tier and nothing follows GROWTH', () => {
    expect(nextPhase('simple', 'QA')).toBe('GROWTH');
    expect(nextPhase('complex', 'DEPLOYMENT')).toBe('GROWTH');
    expect(nextPhase('standard', 'GROWTH')).toBeUndefined();
  });
});

describe('planTransition', () => {
  it('moves forward one phase when the exit criteria hold', () => {
    expect(planTransition('complex', 'INFRASTRUCTURE', undefined, facts())).toEqual({
      ok: true,
      from: 'INFRASTRUCTURE',
      to: 'DEVELOPMENT',
      direction: 'forward',
    });
  });

  it('refuses to leave BOOTSTRAP without a spec, naming the fix', () => {
    const plan = planTransition('simple', 'BOOTSTRAP', undefined, facts({ specRecorded: false }));
    expect(plan).toMatchObject({ ok: false, to: 'DEVELOPMENT' });
    expect(!plan.ok && plan.reasons[0]).toMatch(/loki_start/);
  });

  it('refuses to leave DEVELOPMENT with no change, but does not gate when change cannot be measured', () => {
    expect(planTransition('simple', 'DEVELOPMENT', undefined, facts({ changedFilesSinceBaseline: 0 })).ok).toBe(false);
    expect(
      planTransition(
        'simple',
        'DEVELOPMENT',
        undefined,
        facts({ gitRepository: false, changedFilesSinceBaseline: null }),
      ).ok,
    ).toBe(true);
    expect(planTransition('simple', 'DEVELOPMENT', undefined, facts({ changedFilesSinceBaseline: null })).ok).toBe(
      true,
    );
  });

  it('refuses skips, phases outside the tier and staying put', () => {
    expect(planTransition('complex', 'BOOTSTRAP', 'ARCHITECTURE', facts())).toMatchObject({ ok: false });
    expect(planTransition('simple', 'BOOTSTRAP', 'DISCOVERY', facts())).toMatchObject({
      ok: false,
      reasons: [expect.stringMatching(/not a phase of the simple tier/)],
    });
    expect(planTransition('simple', 'QA', 'QA', facts())).toMatchObject({
      ok: false,
      reasons: [expect.stringMatching(/already in QA/)],
    });
  });

  it('allows going back with a reason, whatever the exit criteria say', () => {
    expect(planTransition('standard', 'QA', 'ARCHITECTURE', facts({ specRecorded: false }))).toMatchObject({
      ok: false,
    });
    expect(
      planTransition('standard', 'QA', 'ARCHITECTURE', facts({ specRecorded: false }), 'design flaw'),
    ).toMatchObject({ ok: true, direction: 'back' });
    expect(planTransition('standard', 'QA', 'ARCHITECTURE', facts(), '   ')).toMatchObject({ ok: false });
  });

  it('enters GROWTH only after completion', () => {
    expect(planTransition('simple', 'QA', undefined, facts())).toMatchObject({ ok: false, to: 'GROWTH' });
    expect(planTransition('simple', 'QA', undefined, facts({ runCompleted: true }))).toMatchObject({
      ok: true,
      to: 'GROWTH',
    });
    expect(planTransition('simple', 'GROWTH', undefined, facts())).toMatchObject({ ok: false });
  });
});

describe('complexity', () => {
  const none = { sourceFiles: 0, containerOrInfra: [] };

  it('reads words, items, sections and integrations from Markdown, skipping code fences', () => {
    const s = specSignals(
      '# Title\n\n## A\n- one\n- two\n1. three\n```\n# not a heading\n- not an item\n```\nUses Stripe and OAuth.\n',
    );
    expect(s).toMatchObject({ sections: 2, features: 3 });
    expect(s.integrations.sort()).toEqual(['oauth', 'stripe']);
    expect(specSignals('redistribute the s3cret').integrations).toEqual([]);
  });

  it('classifies a small brief in an empty repository as simple', () => {
    expect(classifyComplexity(specSignals('# Todo\n- add\n- list\n'), none).tier).toBe('simple');
  });

  it('classifies mid-size work as standard', () => {
    const spec = `# App\n${Array.from({ length: 4 }, (_, i) => `## S${i}\n- a\n- b\n`).join('')}`;
    expect(classifyComplexity(specSignals(spec), { sourceFiles: 12, containerOrInfra: [] }).tier).toBe('standard');
  });

  it.each([
    ['many words', { words: 3000, features: 1, sections: 1, integrations: [] }, none],
    ['many items', { words: 100, features: 20, sections: 1, integrations: [] }, none],
    ['many sections', { words: 100, features: 1, sections: 12, integrations: [] }, none],
    ['two integrations', { words: 50, features: 1, sections: 1, integrations: ['stripe', 'oauth'] }, none],
    [
      'a large repository',
      { words: 50, features: 1, sections: 1, integrations: [] },
      { sourceFiles: 80, containerOrInfra: [] },
    ],
    [
      'infrastructure files',
      { words: 50, features: 1, sections: 1, integrations: [] },
      { sourceFiles: 1, containerOrInfra: ['docker-compose.yml'] },
    ],
  ])('classifies %s as complex, with a reason', (_, spec, repo) => {
    const d = classifyComplexity(spec, repo);
    expect(d.tier).toBe('complex');
    expect(d.reasons.length).toBeGreaterThan(0);
  });
});
