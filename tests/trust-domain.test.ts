/** The trust layer's pure rules: checklist derivation and held-out selection, edits, verdicts, the council tally, stagnation, the gate and the headline. */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  applyEdits,
  heldOutCount,
  inferCheck,
  itemId,
  itemVerdict,
  itemsFromSpec,
  markHeldOut,
  selectHeldOut,
  visibleItems,
  withoutHeldOut,
  type Checklist,
  type ChecklistItem,
} from '../mcp-server/src/domain/checklist.js';
import {
  conveneRefusal,
  councilDue,
  effectiveThreshold,
  tally,
  trackStagnation,
  type CastVote,
} from '../mcp-server/src/domain/council.js';
import { completionGate, headline, type VerificationFacts } from '../mcp-server/src/domain/evidence.js';
import { tasksFromSpec } from '../mcp-server/src/domain/spec-tasks.js';

const NOW = '2026-11-23T00:00:00.000Z';

function item(over: Partial<ChecklistItem> = {}): ChecklistItem {
  const text = over.text ?? 'the thing works';
  return {
    id: itemId(text),
    text,
    source: 'spec',
    origin: 'spec',
    check: null,
    checkFromSpec: false,
    status: 'open',
    note: null,
    result: null,
    heldOut: false,
    updatedAt: NOW,
    ...over,
  };
}

function vote(seat: number, v: CastVote['vote'], items: CastVote['items'] = []): CastVote {
  return {
    seat,
    role: `r${seat}`,
    vote: v,
    rationale: `seat ${seat} says ${v}`,
    evidence: ['v0001:tests'],
    items,
    codeState: 'tree',
    at: NOW,
    agent: 'a',
  };
}

const GREEN: VerificationFacts = {
  id: 'v0001',
  at: NOW,
  codeState: 'tree',
  checks: [{ name: 'test', command: 'npm test', exitCode: 0, ok: true, durationMs: 10, detail: '3 passed' }],
  tests: { verdict: 'pass', passed: 3, failed: 0, skipped: 0, detail: '3 passed' },
  diff: { files: 2, insertions: 10, deletions: 1 },
  blocking: [],
  gaps: [],
  toJudge: [],
};

describe('held-out selection', () => {
  it('reserves none below 4 items, then a quarter rounded, between 1 and 5', () => {
    expect([0, 1, 2, 3].map(heldOutCount)).toEqual([0, 0, 0, 0]);
    expect([4, 5, 6, 7, 8, 10, 12, 20, 21, 100].map(heldOutCount)).toEqual([1, 1, 2, 2, 2, 3, 3, 5, 5, 5]);
  });

  it('takes the first ids in sha256(salt + id) order, independent of the input order', () => {
    const ids = Array.from({ length: 12 }, (_, i) => `c-${i}`);
    const sha = (id: string) => crypto.createHash('sha256').update(`s1${id}`).digest('hex');
    const bySha = [...ids].sort((a, b) => sha(a).localeCompare(sha(b)));
    expect(selectHeldOut(ids, 's1')).toEqual(bySha.slice(0, 3).sort());
    expect(selectHeldOut([...ids].reverse(), 's1')).toEqual(selectHeldOut(ids, 's1'));
  });

  it('gives another selection for another salt, so the spec alone does not tell which', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c-${i}`);
    const seen = new Set(Array.from({ length: 20 }, (_, i) => selectHeldOut(ids, `salt-${i}`).join()));
    expect(seen.size).toBeGreaterThan(10);
  });
});

describe('checklist from a spec', () => {
  const spec = [
    '# Todo app',
    'The app must store todos in `data/todos.json`. Users should see a friendly error for bad input.',
    '## Features',
    '- Add a todo',
    '  - `src/todo.js` exists',
    '  - all tests pass',
    '- List todos',
    '  - GET http://localhost:3000/todos returns 200',
    '  - `README.md` contains `npm start`',
    '## Acceptance criteria',
    '- It works offline',
  ].join('\n');
  const tasks = tasksFromSpec(spec, '.md').tasks;
  const items = itemsFromSpec(tasks, NOW);

  it('takes acceptance criteria and must/should sentences, with stable content ids, the same every time', () => {
    const texts = items.map((i) => i.text);
    expect(texts).toEqual(
      expect.arrayContaining([
        '`src/todo.js` exists',
        'all tests pass',
        'It works offline',
        'The app must store todos in `data/todos.json`.',
        'Users should see a friendly error for bad input.',
      ]),
    );
    expect(itemsFromSpec(tasks, NOW)).toEqual(items);
    // Criteria are `c-` items; a requirement stated without criteria (here the two prose sentences) is an `r-` item.
    for (const i of items) expect(i.id).toBe(itemId(i.text, i.id.startsWith('r-') ? 'r' : 'c'));
    expect(items.filter((i) => i.id.startsWith('r-')).map((i) => i.text)).toEqual([
      'The app must store todos in `data/todos.json`.',
      'Users should see a friendly error for bad input.',
    ]);
  });

  it('infers the machine checks a sentence states plainly', () => {
    const byText = (t: string) => items.find((i) => i.text === t)!.check;
    expect(byText('`src/todo.js` exists')).toEqual({ kind: 'file-exists', path: 'src/todo.js' });
    expect(byText('all tests pass')).toEqual({ kind: 'tests-pass' });
    expect(byText('GET http://localhost:3000/todos returns 200')).toEqual({
      kind: 'http',
      url: 'http://localhost:3000/todos',
      status: 200,
    });
    expect(byText('`README.md` contains `npm start`')).toEqual({
      kind: 'file-contains',
      path: 'README.md',
      text: 'npm start',
    });
    expect(inferCheck('`README.md` contains `npm start`')).toEqual({
      kind: 'file-contains',
      path: 'README.md',
      text: 'npm start',
    });
    expect(inferCheck('the app creates `data/out.json`')).toEqual({ kind: 'file-exists', path: 'data/out.json' });
    expect(inferCheck('`/etc/passwd` exists')).toBeNull();
    expect(inferCheck('`../x` exists')).toBeNull();
    expect(inferCheck('GET http://example.com/ returns 200')).toBeNull();
  });

  it('holds out the selected items and strips them from the seed tasks', () => {
    expect(items.some((i) => i.heldOut)).toBe(false);
    const marked = markHeldOut(
      items,
      new Set(
        selectHeldOut(
          items.map((i) => i.id),
          'salt',
        ),
      ),
    );
    const held = marked.filter((i) => i.heldOut);
    // Requirement (`r-`) items are the tasks' own titles: never held out, and not counted for the quarter.
    expect(held.length).toBe(heldOutCount(items.filter((i) => !i.id.startsWith('r-')).length));
    expect(held.some((i) => i.id.startsWith('r-'))).toBe(false);
    const seeded = JSON.stringify(withoutHeldOut(tasks, marked));
    for (const h of held) expect(seeded).not.toContain(h.text);
    const list: Checklist = { runId: 'r', items: marked, revealedAt: null, updatedAt: NOW };
    expect(visibleItems(list).some((i) => i.heldOut)).toBe(false);
    expect(visibleItems({ ...list, revealedAt: NOW })).toHaveLength(items.length);
    expect(visibleItems(list)).toHaveLength(items.length - held.length);
  });
});

describe('checklist edits', () => {
  const base: Checklist = {
    runId: 'r',
    items: [
      item({ text: 'spec item' }),
      item({ text: 'secret item', heldOut: true }),
      item({ text: 'checked', check: { kind: 'tests-pass' } }),
    ],
    revealedAt: null,
    updatedAt: NOW,
  };

  it('adds items, marks met with evidence, waives with a reason', () => {
    const { list, changed } = applyEdits(
      base,
      [
        { text: 'docs are updated' },
        { id: itemId('spec item'), status: 'met', evidence: 'see src/app.js line 4' },
        { id: itemId('checked'), waive: 'the CI runs them elsewhere' },
      ],
      NOW,
    );
    expect(changed).toHaveLength(3);
    expect(list.items.find((i) => i.text === 'docs are updated')?.origin).toBe('agent');
    expect(list.items.find((i) => i.text === 'spec item')).toMatchObject({
      status: 'met',
      note: 'see src/app.js line 4',
    });
    expect(list.items.find((i) => i.text === 'checked')).toMatchObject({
      status: 'waived',
      note: 'the CI runs them elsewhere',
    });
  });

  it.each([
    [[{ id: itemId('secret item'), status: 'met' as const, evidence: 'long enough evidence' }], /no checklist item/],
    [[{ id: 'c-00000000', status: 'met' as const, evidence: 'long enough evidence' }], /no checklist item/],
    [
      [{ id: itemId('checked'), status: 'met' as const, evidence: 'long enough evidence' }],
      /met only when loki_verify/,
    ],
    [[{ id: itemId('spec item'), status: 'met' as const }], /needs `evidence`/],
    [[{ id: itemId('spec item'), waive: 'short' }], /reason of at least/],
    [[{ id: itemId('spec item'), remove: true }], /cannot be removed/],
    [[{ id: itemId('spec item'), text: 'new words' }], /cannot change/],
    [[{ status: 'met' as const }], /needs `text`/],
    [[{ text: 'docs' }, { text: 'docs' }], /already added an item with this text/],
  ])('refuses %j, changing nothing', (edits, message) => {
    const before = JSON.stringify(base);
    expect(() => applyEdits(base, edits, NOW)).toThrow(message);
    expect(JSON.stringify(base)).toBe(before);
  });

  it('agent items have their own ids, so adding the text of a hidden held-out item reveals nothing', () => {
    const { list, changed } = applyEdits(base, [{ text: 'secret item' }], NOW);
    expect(changed).toEqual([itemId('secret item', 'a')]);
    expect(list.items.filter((i) => i.text === 'secret item').map((i) => i.origin)).toEqual(['spec', 'agent']);
  });

  it('after the reveal, held-out items cannot be edited, marked or waived; spec checks cannot be changed', () => {
    const revealed = { ...base, revealedAt: NOW };
    const held = itemId('secret item');
    for (const e of [
      { id: held, waive: 'a reason long enough' },
      { id: held, check: { kind: 'tests-pass' as const } },
      { id: held, status: 'met' as const, evidence: 'trust me, it works' },
    ]) {
      expect(() => applyEdits(revealed, [e], NOW)).toThrow(/held-out item: its spec check or the council judges it/);
    }
    const locked: Checklist = {
      ...base,
      items: [item({ text: 'has a spec check', check: { kind: 'tests-pass' }, checkFromSpec: true })],
    };
    expect(() => applyEdits(locked, [{ id: itemId('has a spec check'), check: null }], NOW)).toThrow(
      /comes from the spec and cannot be changed/,
    );
    // With the council disabled the builder judges held-out items like the others.
    expect(
      applyEdits(revealed, [{ id: held, status: 'met', evidence: 'covered by the tests' }], NOW, false).changed,
    ).toEqual([held]);
  });

  it('strips held-out requirements from titles and emphasised prose, and never holds out a task title', () => {
    const spec =
      '# Cache\n\nEntries **must** expire after 60 seconds. Reads _should_ be fast.\n\n## Work\n- The cache must be bounded\n  - eviction is LRU\n  - size is configurable\n  - stats are exposed\n  - clear() empties it\n';
    const tasks = tasksFromSpec(spec, '.md').tasks;
    const items = itemsFromSpec(tasks, NOW);
    expect(items.map((i) => i.text)).toEqual(
      expect.arrayContaining(['Entries must expire after 60 seconds.', 'Reads should be fast.']),
    );
    expect(items.map((i) => i.text)).not.toContain('The cache must be bounded');
    const all = items.map((i) => ({ ...i, heldOut: true }));
    const seeded = JSON.stringify(withoutHeldOut(tasks, all));
    for (const i of all) expect(seeded).not.toContain(i.text);
  });

  it('a bad edit after good ones applies none of them', () => {
    expect(() => applyEdits(base, [{ text: 'fine item' }, { id: 'c-nope' }], NOW)).toThrow(/edit 2/);
  });
});

describe('item verdicts', () => {
  it('judges by check, by the agent, by the council for held-out items, or as waived', () => {
    expect(itemVerdict(item({ check: { kind: 'tests-pass' } }), undefined, 2).ok).toBe(false);
    expect(
      itemVerdict(
        item({ check: { kind: 'tests-pass' }, result: { ok: true, detail: 'green', at: NOW } }),
        undefined,
        2,
      ),
    ).toMatchObject({ ok: true, how: 'check' });
    expect(
      itemVerdict(item({ check: { kind: 'tests-pass' }, result: { ok: false, detail: 'red', at: NOW } }), undefined, 2),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/fails its tests-pass check: red/) });
    expect(itemVerdict(item({ status: 'met', note: 'x' }), undefined, 2)).toMatchObject({ ok: true, how: 'agent' });
    expect(itemVerdict(item(), undefined, 2).ok).toBe(false);
    expect(itemVerdict(item({ heldOut: true }), null, 2)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/held-out item .* no council has judged/),
    });
    expect(itemVerdict(item({ heldOut: true }), 1, 2)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/only 1 council member/),
    });
    expect(itemVerdict(item({ heldOut: true }), 2, 2)).toMatchObject({ ok: true, how: 'council' });
    expect(itemVerdict(item({ status: 'waived', note: 'because' }), null, 2)).toMatchObject({
      ok: true,
      how: 'waived',
    });
  });
});

describe('council', () => {
  it('the threshold is at least two thirds, at least the configured value, at most the size', () => {
    expect(effectiveThreshold(3, 1)).toBe(2);
    expect(effectiveThreshold(3, 2)).toBe(2);
    expect(effectiveThreshold(3, 3)).toBe(3);
    expect(effectiveThreshold(5, 2)).toBe(4);
    expect(effectiveThreshold(3, 9)).toBe(3);
  });

  it('tallies only when every seat voted; cannot-validate counts against', () => {
    expect(tally([vote(1, 'approve')], 3, 2, null)).toEqual({ state: 'voting', cast: 1, size: 3 });
    expect(tally([vote(1, 'approve'), vote(2, 'approve'), vote(3, 'reject')], 3, 2, null)).toMatchObject({
      state: 'approved',
      unanimous: false,
    });
    const r = tally([vote(1, 'approve'), vote(2, 'cannot-validate'), vote(3, 'reject')], 3, 2, null);
    expect(r).toMatchObject({ state: 'rejected', approvals: 1 });
  });

  it("a unanimous approval stands only after the devil's advocate approves; its rejection vetoes", () => {
    const all = [vote(1, 'approve'), vote(2, 'approve'), vote(3, 'approve')];
    expect(tally(all, 3, 2, null)).toEqual({ state: 'devils-advocate', approvals: 3 });
    expect(tally(all, 3, 2, vote(0, 'approve'))).toMatchObject({
      state: 'approved',
      unanimous: true,
      devilsAdvocate: 'confirmed',
    });
    expect(tally(all, 3, 2, vote(0, 'reject'))).toMatchObject({ state: 'rejected', vetoed: true });
    expect(tally(all, 3, 2, vote(0, 'cannot-validate'))).toMatchObject({ state: 'rejected', vetoed: true });
  });

  it('convenes only on facts for the current code, once there is progress to judge unless a review is forced', () => {
    expect(conveneRefusal({ progress: true, verifiedCurrentCode: false, forcedReview: false })).toMatch(/loki_verify/);
    // No code changed and no task done: nothing to judge, however many loki_status calls were made.
    expect(conveneRefusal({ progress: false, verifiedCurrentCode: true, forcedReview: false })).toMatch(
      /nothing to judge/,
    );
    expect(conveneRefusal({ progress: true, verifiedCurrentCode: true, forcedReview: false })).toBeUndefined();
    expect(conveneRefusal({ progress: false, verifiedCurrentCode: true, forcedReview: true })).toBeUndefined();
    expect(councilDue(10, 3, 5)).toBe(true);
    expect(councilDue(11, 3, 5)).toBe(false);
    expect(councilDue(5, 6, 5)).toBe(false);
  });

  it('stagnation: the same code for the limit forces a review, twice the limit stops', () => {
    let s = { codeState: null as string | null, unchangedTurns: 0 };
    const actions: string[] = [];
    for (let i = 0; i < 11; i++) {
      const step = trackStagnation(s, 'same', 5);
      s = step.stagnation;
      actions.push(step.action);
    }
    expect(actions).toEqual([
      'none',
      'none',
      'none',
      'none',
      'none',
      'force-review',
      'force-review',
      'force-review',
      'force-review',
      'force-review',
      'stop',
    ]);
    expect(trackStagnation(s, 'changed', 5)).toEqual({
      stagnation: { codeState: 'changed', unchangedTurns: 0 },
      action: 'none',
    });
  });
});

describe('completion gate and headline', () => {
  const approved = {
    id: 'k001',
    outcome: { state: 'approved' as const, approvals: 2, unanimous: false, devilsAdvocate: 'not-needed' as const },
    codeState: 'tree',
    size: 3,
    threshold: 2,
    votes: [vote(1, 'approve'), vote(2, 'approve'), vote(3, 'reject')],
    devilsAdvocate: null,
    convenedAt: NOW,
    verificationId: 'v0001',
    checklist: 'fp',
  };
  const list = (items: ChecklistItem[]): Checklist => ({ runId: 'r', items, revealedAt: NOW, updatedAt: NOW });

  it('accepts green facts, a met checklist and an approving council on the same code', () => {
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: GREEN,
        checklist: list([item({ status: 'met', note: 'ok' })]),
        council: approved,
        checklistFingerprint: 'fp',
      }),
    ).toMatchObject({ accepted: true, reasons: [] });
  });

  it('refuses with every reason', () => {
    const r = completionGate({
      councilEnabled: true,
      codeState: 'changed',
      verification: { ...GREEN, blocking: ['Tests failed'] },
      checklist: list([item()]),
      council: approved,
      checklistFingerprint: 'fp',
    });
    expect(r.accepted).toBe(false);
    expect(r.reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/code changed after the last verification/),
        'Tests failed',
        expect.stringMatching(/voted before the last code change/),
        expect.stringMatching(/is not met/),
      ]),
    );
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: null,
        checklist: null,
        council: null,
        checklistFingerprint: 'fp',
      }).reasons,
    ).toEqual([expect.stringMatching(/no verification/), expect.stringMatching(/has not convened/)]);
  });

  it('refuses a council that judged another verification or another checklist', () => {
    const met = list([item({ status: 'met', note: 'ok' })]);
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: { ...GREEN, id: 'v0002' },
        checklist: met,
        council: approved,
        checklistFingerprint: 'fp',
      }).reasons,
    ).toEqual([expect.stringMatching(/judged verification v0001, but the latest is v0002/)]);
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: GREEN,
        checklist: met,
        council: approved,
        checklistFingerprint: 'other',
      }).reasons,
    ).toEqual([expect.stringMatching(/checklist changed after council k001 convened/)]);
  });

  it('a held-out item needs the council to find it met', () => {
    const held = item({ text: 'hidden requirement', heldOut: true });
    const withVotes = (met: boolean[]) => ({
      ...approved,
      votes: met.map((m, i) => vote(i + 1, i < 2 ? 'approve' : 'reject', [{ id: held.id, met: m, note: '' }])),
    });
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: GREEN,
        checklist: list([held]),
        council: withVotes([true, true, false]),
        checklistFingerprint: 'fp',
      }).accepted,
    ).toBe(true);
    expect(
      completionGate({
        councilEnabled: true,
        codeState: 'tree',
        verification: GREEN,
        checklist: list([held]),
        council: withVotes([true, false, false]),
        checklistFingerprint: 'fp',
      }).reasons,
    ).toEqual([expect.stringMatching(/held-out item .* only 1/)]);
  });

  it('derives the headline from facts only', () => {
    expect(headline(GREEN, [{ ok: true }], 0).headline).toBe('VERIFIED');
    expect(headline({ ...GREEN, gaps: ['no git'] }, [], 0).headline).toBe('VERIFIED WITH GAPS');
    expect(headline(GREEN, [], 1).headline).toBe('VERIFIED WITH GAPS');
    expect(headline(GREEN, [{ ok: false }], 0).headline).toBe('NOT VERIFIED');
    expect(headline(null, [], 0).headline).toBe('NOT VERIFIED');
  });
});
