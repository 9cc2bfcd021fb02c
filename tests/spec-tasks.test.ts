/** Spec -> seed tasks (domain/spec-tasks.ts) on realistic fixtures of every kind, malformed specs, and the same through loki_start. */
import { itemsFromSpec, markHeldOut, withoutHeldOut } from '../mcp-server/src/domain/checklist.js';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_SPEC_TASKS, detectSpecKind, tasksFromSpec, type SpecKind } from '../mcp-server/src/domain/spec-tasks.js';
import type { TaskDraft } from '../mcp-server/src/domain/tasks.js';
import {
  REPO_ROOT,
  connect,
  keptHeldOut,
  snapshot,
  structured,
  tempProject,
  text,
  type Connected,
  type TempProject,
} from './helpers.js';
import { SpecError } from '../mcp-server/src/errors.js';

const FIXTURES = path.join(REPO_ROOT, 'tests', 'fixtures', 'specs');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
const parse = (name: string) => tasksFromSpec(fixture(name), path.extname(name));
const spec = (section: string | null) => ({ kind: 'spec' as const, section });

// ---- expected task lists, written out by hand from the fixtures ------------------------------------------

const PRD_MD: TaskDraft[] = [
  {
    id: 't1',
    title: 'User sign-up and login (P0)',
    description: '',
    phase: 'DEVELOPMENT',
    priority: 'critical',
    acceptance: ['email and password', 'password reset by email'],
    source: spec('Features'),
  },
  {
    id: 't2',
    title: 'Save a recipe from a URL [high]',
    description: 'Imports the title, ingredients and steps from the page.',
    phase: 'DEVELOPMENT',
    priority: 'high',
    source: spec('Features'),
  },
  {
    id: 't3',
    title: 'Tag recipes and filter by tag',
    description: '',
    phase: 'DEVELOPMENT',
    priority: 'medium',
    source: spec('Features'),
  },
  {
    id: 't4',
    title: 'Share a recipe by link P1',
    description: '',
    phase: 'DEVELOPMENT',
    priority: 'high',
    source: spec('Features'),
  },
  {
    id: 't5',
    title: 'Full-text search over titles and ingredients',
    description: '',
    phase: 'DEVELOPMENT',
    priority: 'medium',
    source: spec('Features > Search'),
  },
  {
    id: 't6',
    title: 'Search suggestions (low)',
    description: '',
    phase: 'DEVELOPMENT',
    priority: 'low',
    source: spec('Features > Search'),
  },
  {
    id: 't7',
    title: 'Meet the acceptance criteria of Features',
    description: 'Check every acceptance criterion listed for Features and fix what does not hold.',
    phase: 'DEVELOPMENT',
    priority: 'high',
    acceptance: ['a saved recipe survives a restart', 'sharing works without an account'],
    dependencies: ['t1', 't2', 't3', 't4', 't5', 't6'],
    source: spec('Features'),
  },
  {
    id: 't8',
    title: 'Recipe and Tag tables with a many-to-many join',
    description: '',
    phase: 'ARCHITECTURE',
    priority: 'medium',
    acceptance: ['deleting a tag keeps its recipes'],
    source: spec('Data model'),
  },
  {
    id: 't9',
    title: 'End-to-end tests for sign-up and saving',
    description: '',
    phase: 'QA',
    priority: 'medium',
    source: spec('Testing'),
  },
  {
    id: 't10',
    title: 'Load test the search endpoint',
    description: '',
    phase: 'QA',
    priority: 'medium',
    source: spec('Testing'),
  },
  {
    id: 't11',
    title: 'Deploy to Fly.io with a managed Postgres',
    description: '',
    phase: 'DEPLOYMENT',
    priority: 'medium',
    source: spec('Deployment'),
  },
  {
    id: 't12',
    title: 'Meet the acceptance criteria of Recipe Box',
    description: 'Check every acceptance criterion listed for Recipe Box and fix what does not hold.',
    phase: 'QA',
    priority: 'high',
    acceptance: ['every feature above has a test', 'the app starts with one command'],
    dependencies: ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9', 't10', 't11'],
    source: spec(null),
  },
];

// A prose brief: its instruction sentence is the requirement, the must-sentence that refers back to it ("It
// should ...") its criterion, the other sentences its description (the old reader made the whole text one task
// with no criteria, so the checklist was empty).
const BRIEF_TXT: TaskDraft[] = [
  {
    id: 't1',
    title: 'Build a command-line tool that converts CSV files to JSON.',
    description: 'Nothing else is needed for the first version.',
    phase: 'DEVELOPMENT',
    priority: 'medium',
    acceptance: ['It should stream large files and keep the column order.'],
    source: spec(null),
  },
];

const prdItem = (id: string, over: Partial<TaskDraft>, section: string): TaskDraft => ({
  id,
  title: '',
  description: '',
  acceptance: [],
  priority: 'medium',
  phase: 'DEVELOPMENT',
  dependencies: [],
  source: spec(section),
  ...over,
});

const PRD_JSON: TaskDraft[] = [
  prdItem(
    't1',
    {
      title: 'Sign in with Google',
      priority: 'critical',
      acceptance: ['a new user lands in the default room', 'signing out ends every session'],
    },
    '/features/0',
  ),
  prdItem(
    't2',
    {
      title: 'Chat rooms',
      description: 'Create, join and leave rooms.',
      priority: 'high',
      acceptance: ['a room holds 500 members'],
      dependencies: ['t1'],
    },
    '/features/1',
  ),
  prdItem(
    't3',
    { title: 'Message history', description: 'Scroll back through the last 90 days.', dependencies: ['t2', 't5'] },
    '/features/2',
  ),
  prdItem('t4', { title: 'Emoji reactions', priority: 'low', dependencies: ['t3'] }, '/features/3'),
  prdItem('t5', { title: 'Read receipts', priority: 'low' }, '/features/4'),
  prdItem('t6', { title: 'CI pipeline', priority: 'high', phase: 'INFRASTRUCTURE' }, '/features/5'),
  prdItem('t7', { title: 'Load tests', priority: 'critical', phase: 'QA', dependencies: ['t2'] }, '/features/6'),
  { id: 't8', title: 'p95 latency under 200 ms', phase: 'DEVELOPMENT', source: spec('/nonFunctional/requirements/0') },
];

const PRD_YAML: TaskDraft[] = [
  prdItem(
    't1',
    {
      title: 'As a reader I can save a link so that I can read it later',
      priority: 'high',
      acceptance: ['the link appears at the top of my list', 'saving the same link twice keeps one copy'],
    },
    '/userStories/0',
  ),
  prdItem('t2', { title: 'Archive old links', priority: 'low', dependencies: ['t1'] }, '/userStories/1'),
  prdItem(
    't3',
    { title: 'Export to HTML', acceptance: ['an HTML file opens in any browser'], dependencies: ['t1'] },
    '/userStories/2',
  ),
  { id: 't4', title: 'Release 1.0 to production', phase: 'DEPLOYMENT', source: spec('/milestones/0') },
];

// Requirement ids such as S1 are carried into the titles (slugs such as "auth" in prd.json only link dependencies).
const EPICS_JSON: TaskDraft[] = [
  prdItem(
    't1',
    {
      title: 'S1: Pay by card',
      priority: 'critical',
      acceptance: ['3-D Secure is supported', 'a declined card shows why'],
    },
    '/epics/0/stories/0',
  ),
  prdItem('t2', { title: 'S2: Order confirmation email', dependencies: ['t1'] }, '/epics/0/stories/1'),
  prdItem(
    't3',
    { title: 'S3: Production hosting on Render', phase: 'DEPLOYMENT', dependencies: ['t1', 't2'] },
    '/epics/1/stories/0',
  ),
  prdItem('t4', { title: 'S4: Smoke checks after each deploy', phase: 'QA' }, '/epics/1/stories/1'),
  prdItem('t5', { title: 'E3: Wishlist', description: 'Save products for later', priority: 'low' }, '/epics/2'),
];

const op = (
  id: string,
  title: string,
  acceptance: string[],
  section: string,
  over: Partial<TaskDraft> = {},
): TaskDraft => ({
  id,
  title,
  description: '',
  acceptance,
  priority: 'medium',
  phase: 'DEVELOPMENT',
  source: spec(section),
  ...over,
});

const OPENAPI_YAML: TaskDraft[] = [
  op(
    't1',
    'GET /pets: List pets',
    ['GET /pets responds 200 (A list of pets)', 'GET /pets responds default (Unexpected error)'],
    'paths./pets.get [pets]',
  ),
  op(
    't2',
    'POST /pets: createPet',
    ['POST /pets responds 201 (Created)', 'POST /pets responds 400 (Invalid pet)'],
    'paths./pets.post [pets, admin]',
    {
      description: 'Adds a pet to the store.',
    },
  ),
  op(
    't3',
    'GET /pets/{petId}: Show a pet',
    ['GET /pets/{petId} responds 200 (The pet)', 'GET /pets/{petId} responds 404 (Not found)'],
    'paths./pets/{petId}.get',
  ),
  op(
    't4',
    'DELETE /pets/{petId}: Remove a pet',
    ['DELETE /pets/{petId} responds 204 (Removed)'],
    'paths./pets/{petId}.delete',
    { priority: 'low' },
  ),
];

const SWAGGER_JSON: TaskDraft[] = [
  op('t1', 'GET /todos: List todos', ['GET /todos responds 200 (OK)'], 'paths./todos.get [todos]'),
  op(
    't2',
    'POST /todos: Create a todo',
    ['POST /todos responds 201 (Created)', 'POST /todos responds 422'],
    'paths./todos.post',
  ),
  op('t3', 'PATCH /todos/{id}: updateTodo', ['PATCH /todos/{id} responds 200 (Updated)'], 'paths./todos/{id}.patch', {
    description: 'Change the title or mark it done.',
  }),
];

const GOOD: [string, SpecKind, TaskDraft[], string[]][] = [
  ['prd.md', 'markdown', PRD_MD, ['1 checked item(s) ("- [x]") are already done and were not queued']],
  ['brief.txt', 'text', BRIEF_TXT, []],
  ['prd.json', 'json', PRD_JSON, []],
  ['prd.yaml', 'yaml', PRD_YAML, []],
  ['epics.json', 'json', EPICS_JSON, []],
  ['openapi.yaml', 'openapi', OPENAPI_YAML, []],
  ['swagger.json', 'openapi', SWAGGER_JSON, []],
];

// ---- the fixtures -------------------------------------------------------------------------------------------

describe('realistic specs give exactly the expected tasks', () => {
  it.each(GOOD)('%s (%s)', (name, kind, tasks, notes) => {
    const r = parse(name);
    expect(r.kind).toBe(kind);
    expect(r.tasks).toStrictEqual(tasks);
    expect(r.notes).toEqual(notes);
    expect(r.tasks.map((t) => t.id)).toEqual(tasks.map((_, i) => `t${i + 1}`));
  });

  it.each(GOOD)('%s parses to the same result every time', (name) => {
    const first = parse(name);
    const second = parse(name);
    expect(second).toStrictEqual(first);
    expect(second).not.toBe(first);
    expect(JSON.stringify(tasksFromSpec(fixture(name), path.extname(name)))).toBe(JSON.stringify(first));
  });

  it('reads the Markdown PRD the same with CRLF line ends', () => {
    expect(tasksFromSpec(fixture('prd.md').replace(/\n/g, '\r\n'), '.md')).toStrictEqual(parse('prd.md'));
  });

  it('the Markdown PRD: context, non-goals, done items and fenced code give no tasks', () => {
    const titles = parse('prd.md').tasks.flatMap((t) => [t.title, ...(t.acceptance ?? [])]);
    for (const word of [
      'context, not work',
      'Meal planning',
      'Mobile apps',
      'Project skeleton',
      'done item',
      'region',
      'machines',
    ]) {
      expect(titles.join('\n')).not.toContain(word);
    }
  });

  it('every dependency names another task of the same spec', () => {
    for (const [name] of GOOD) {
      const tasks = parse(name).tasks;
      const ids = tasks.map((t) => t.id);
      for (const t of tasks) {
        for (const d of t.dependencies ?? []) expect(ids).toContain(d);
        expect(t.dependencies ?? []).not.toContain(t.id);
      }
    }
  });
});

// ---- Markdown rules, one at a time -------------------------------------------------------------------------

describe('Markdown rules', () => {
  const md = (text: string) => tasksFromSpec(text, '.md');

  it('gives criteria to the single task of their section', () => {
    const r = md('# App\n## Export\n- export to CSV\n### Definition of done\n- opens in a spreadsheet\n');
    expect(r.tasks).toStrictEqual([
      {
        id: 't1',
        title: 'export to CSV',
        description: '',
        phase: 'DEVELOPMENT',
        priority: 'medium',
        source: spec('Export'),
        acceptance: ['opens in a spreadsheet'],
      },
    ]);
  });

  it('gives the criteria of a section that has only subsections a task after all of them', () => {
    const r = md(
      '# Shop\n## Auth\n### Requirements\n- login\n- logout\n### Acceptance criteria\n- users can log in\n## Cart\n- add item\n',
    );
    expect(r.tasks.map((t) => [t.id, t.title, t.dependencies ?? [], t.acceptance ?? []])).toEqual([
      ['t1', 'login', [], []],
      ['t2', 'logout', [], []],
      ['t3', 'Meet the acceptance criteria of Auth', ['t1', 't2'], ['users can log in']],
      ['t4', 'add item', [], []],
    ]);
  });

  it('a section with text and no items is one task; no headings and no items is the whole text', () => {
    const r = md(
      '# Site\n\n## Contact form\n\nA form that emails the owner.\nWith a captcha.\n\n## About page\n- team photos\n',
    );
    expect(r.tasks[0]).toStrictEqual({
      id: 't1',
      title: 'Contact form',
      description: 'A form that emails the owner. With a captcha.',
      phase: 'DEVELOPMENT',
      priority: 'medium',
      source: spec('Contact form'),
    });
    expect(r.tasks[1]!.title).toBe('team photos');
    expect(tasksFromSpec('Just make the button blue.\n', '.md')).toStrictEqual({
      kind: 'text',
      title: 'Just make the button blue.',
      sections: 0,
      tasks: [
        { id: 't1', title: 'Just make the button blue.', description: '', phase: 'DEVELOPMENT', source: spec(null) },
      ],
      notes: [],
    });
  });

  it('reads a .txt with list items as Markdown', () => {
    const r = tasksFromSpec('Todo:\n- buy milk\n- walk the dog\n', '.txt');
    expect(r.kind).toBe('markdown');
    expect(r.tasks.map((t) => t.title)).toEqual(['buy milk', 'walk the dog']);
  });

  it('skips numbered and colon-suffixed skip sections, whole headings only', () => {
    const r = md(
      '# P\n## 2. Non-Goals\n- no\n## Out of scope:\n- no\n## Goals and non-goals\n- yes\n## Future work\n- no\n',
    );
    expect(r.tasks.map((t) => t.title)).toEqual(['yes']);
  });

  it('reads phase from the innermost heading, then from the item, never from the document title', () => {
    const r = md(
      '# Release planner\n## Features\n- pick dates\n- write e2e tests for the calendar\n## Infrastructure\n### Testing\n- flaky test quarantine\n',
    );
    expect(r.tasks.map((t) => [t.title, t.phase])).toEqual([
      ['pick dates', 'DEVELOPMENT'],
      ['write e2e tests for the calendar', 'QA'],
      ['flaky test quarantine', 'QA'],
    ]);
  });

  it('reads priority from a marker on the item, else the innermost heading, never the document title', () => {
    const r = md(
      '# Core banking\n- open an account\n## Must have\n- transfer money\n- statements (low)\n- export [critical]\n- p2 audit log\n',
    );
    expect(r.tasks.map((t) => [t.title, t.priority])).toEqual([
      ['open an account', 'medium'],
      ['transfer money', 'high'],
      ['statements (low)', 'low'],
      ['export [critical]', 'critical'],
      ['p2 audit log', 'medium'],
    ]);
  });

  it('reads a Markdown spec that starts with a link or a badge as Markdown, not as broken JSON', () => {
    const r = md('[![CI](https://ci.example/badge.svg)](https://ci.example)\n\n# Notes app\n\n- create a note\n');
    expect(r.kind).toBe('markdown');
    expect(r.tasks.map((t) => t.title)).toEqual(['create a note']);
    expect(md('[TOC]\n\n- one\n').tasks.map((t) => t.title)).toEqual(['one']);
  });

  it('a document title is never a section to skip, and a sentence about the document is not a requirement', () => {
    const r = md(
      '# Notes\n\nThis document describes what the app should do. The app must save notes.\n\n## Features\n- list notes\n',
    );
    expect(r.title).toBe('Notes');
    expect(r.tasks.map((t) => t.title)).toEqual(['The app must save notes.', 'list notes']);
  });

  it('reads tables by their headers, user stories with their criteria, and prose must-sentences', () => {
    const r = md(
      [
        '# Shop',
        '## Requirements',
        '| Priority | Req ID | Statement | Acceptance |',
        '|---|---|---|---|',
        '| Must | R-1 | List products | shows 20 per page<br>sorted by name |',
        "| Won't | R-2 | Gift cards | |",
        '## Stories',
        'As a buyer, I want to pay by card so that I can check out. It must reject expired cards.',
        '',
        'Acceptance criteria:',
        '- Given a valid card, when I pay, then the order is placed',
        '## Rules',
        'Prices must include VAT. It should round to cents. Shipping is free.',
      ].join('\n'),
    );
    expect(r.tasks.map((t) => [t.title, t.priority, t.acceptance ?? []])).toEqual([
      ['R-1: List products', 'high', ['shows 20 per page', 'sorted by name']],
      [
        'As a buyer, I want to pay by card so that I can check out.',
        'medium',
        ['It must reject expired cards.', 'Given a valid card, when I pay, then the order is placed'],
      ],
      ['Prices must include VAT.', 'medium', ['It should round to cents.']],
    ]);
    expect(r.notes).toEqual(['1 requirement(s) marked "Won\'t" are out of scope and were not queued']);
  });

  it('reads YAML front matter as metadata (its title names the spec), not as a heading', () => {
    const r = md('---\ntitle: Kanban board\nauthor: sam\n---\n\n- drag a card between columns\n');
    expect(r.title).toBe('Kanban board');
    expect(r.tasks.map((t) => t.title)).toEqual(['drag a card between columns']);
  });

  it('a spec whose items are all done falls back to one task named without its Markdown marks', () => {
    const r = md('- [x] all done\n- [X] also\n');
    expect(r.tasks.map((t) => t.title)).toEqual(['all done']);
    expect(r.notes).toEqual(['2 checked item(s) ("- [x]") are already done and were not queued']);
  });

  it('never gives a task an empty title', () => {
    expect(tasksFromSpec('###\n', '.md').tasks[0]!.title).toBe('the spec');
    expect(tasksFromSpec('\n\n  ## \n   Real title\n', '.txt').tasks[0]!.title).toBe('Real title');
  });
});

// ---- JSON / YAML rules ---------------------------------------------------------------------------------------

describe('JSON and YAML PRD rules', () => {
  it('maps numeric priorities 0..3+ and words', () => {
    const features = [0, 1, 2, 3, 7, 'P1', 'urgent', 'could have', 'whatever'].map((priority, i) => ({
      title: `f${i}`,
      priority,
    }));
    const r = tasksFromSpec(JSON.stringify({ features }), '.json');
    expect(r.tasks.map((t) => t.priority)).toEqual([
      'critical',
      'high',
      'medium',
      'low',
      'low',
      'high',
      'critical',
      'low',
      'medium',
    ]);
  });

  it('reads a top-level list of features', () => {
    const r = tasksFromSpec(JSON.stringify([{ id: 'a', title: 'A' }, { title: 'B', dependsOn: ['a'] }, 'C']), '.json');
    expect(r.kind).toBe('json');
    expect(r.tasks.map((t) => [t.id, t.title, t.dependencies ?? [], t.source?.section])).toEqual([
      ['t1', 'A', [], '/0'],
      ['t2', 'B', ['t1'], '/1'],
      ['t3', 'C', [], '/2'],
    ]);
  });

  it('a PRD object without task lists is one task from its title and description', () => {
    const r = tasksFromSpec(JSON.stringify({ name: 'Tiny tool', summary: 'Does one thing.' }), '.json');
    expect(r.tasks).toStrictEqual([
      { id: 't1', title: 'Tiny tool', description: 'Does one thing.', source: spec(null) },
    ]);
  });

  it('refuses a dependency cycle between features, naming it by the spec ids', () => {
    expect(() => parse('bad/cycle.json')).toThrow(
      new SpecError("the spec's dependencies form a cycle: a -> c -> b -> a; remove one of these dependencies"),
    );
  });

  it('keeps at most 100 dependencies and a source of at most 500 characters (what a task record holds)', () => {
    const features = [
      ...Array.from({ length: 120 }, (_, i) => ({ id: `f${i}`, title: `F ${i}` })),
      { id: 'z', title: 'Z', dependsOn: Array.from({ length: 120 }, (_, i) => `f${i}`) },
    ];
    const r = tasksFromSpec(JSON.stringify({ features }), '.json');
    expect(r.tasks.at(-1)!.dependencies).toEqual(Array.from({ length: 100 }, (_, i) => `t${i + 1}`));
    const deep = tasksFromSpec(JSON.stringify({ ['k'.repeat(600)]: { features: ['one', { title: 'two' }] } }), '.json');
    for (const t of deep.tasks) expect(t.source!.section!.length).toBe(500);
  });

  it('skips blank string elements', () => {
    const r = tasksFromSpec(JSON.stringify({ features: ['', '  ', 'real', null] }), '.json');
    expect(r.tasks.map((t) => [t.id, t.title])).toEqual([['t1', 'real']]);
  });
});

// ---- the cap --------------------------------------------------------------------------------------------------

describe(`at most ${MAX_SPEC_TASKS} tasks`, () => {
  it('queues the first ones and says so', () => {
    const text = `# Big\n${Array.from({ length: MAX_SPEC_TASKS + 5 }, (_, i) => `- item ${i + 1}`).join('\n')}\n`;
    const r = tasksFromSpec(text, '.md');
    expect(r.tasks).toHaveLength(MAX_SPEC_TASKS);
    expect(r.tasks.at(-1)).toMatchObject({ id: `t${MAX_SPEC_TASKS}`, title: `item ${MAX_SPEC_TASKS}` });
    expect(r.notes).toEqual([
      `the spec gives ${MAX_SPEC_TASKS + 5} tasks; the first ${MAX_SPEC_TASKS} were queued, add the rest with loki_task_add`,
    ]);
    expect(
      tasksFromSpec(`# Fits\n${Array.from({ length: MAX_SPEC_TASKS }, (_, i) => `- item ${i}`).join('\n')}\n`, '.md')
        .notes,
    ).toEqual([]);
  });

  it('drops dependencies on the tasks that were not queued', () => {
    const features = [
      { id: 'first', title: 'first', dependsOn: ['last', 'second'] },
      { id: 'second', title: 'second' },
      ...Array.from({ length: MAX_SPEC_TASKS }, (_, i) => ({
        id: i === MAX_SPEC_TASKS - 1 ? 'last' : `f${i}`,
        title: `F ${i}`,
      })),
    ];
    const r = tasksFromSpec(JSON.stringify({ features }), '.json');
    expect(r.tasks).toHaveLength(MAX_SPEC_TASKS);
    expect(r.tasks[0]!.dependencies).toEqual(['t2']);
    const ids = new Set(r.tasks.map((t) => t.id));
    for (const t of r.tasks) for (const d of t.dependencies ?? []) expect(ids.has(d)).toBe(true);
  });
});

// ---- malformed specs ---------------------------------------------------------------------------------------

const BAD: [string, RegExp][] = [
  ['bad/invalid.json', /^the spec is not valid JSON \(.+\); fix it, or give it as Markdown$/s],
  [
    'bad/invalid.yaml',
    /^the spec is not valid YAML at line 4, column 4 \(All sequence items must start at the same column.*\); fix it, or give it as Markdown$/,
  ],
  [
    'bad/openapi-no-paths.yaml',
    /^the OpenAPI document has no `paths`: add the operations to build, or give the spec as Markdown$/,
  ],
  ['bad/openapi-paths-not-object.json', /^`paths` in the OpenAPI document must be an object of path -> operations$/],
  ['bad/openapi-bad-path.yaml', /^OpenAPI path "pets" must start with "\/"$/],
  ['bad/openapi-operation-not-object.json', /^OpenAPI operation GET \/pets must be an object$/],
  [
    'bad/openapi-no-operations.yaml',
    /^the OpenAPI document has `paths` but no operations \(get, post, \.\.\.\): add them, or give the spec as Markdown$/,
  ],
  ['bad/scalar.json', /^the spec parsed to a single value, not an object or a list/],
  ['bad/cycle.json', /^the spec's dependencies form a cycle: a -> c -> b -> a; remove one of these dependencies$/],
];

describe('malformed specs throw a SpecError that says what is wrong', () => {
  it.each(BAD)('%s', (name, message) => {
    let caught: unknown;
    try {
      parse(name);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SpecError);
    expect((caught as Error).name).toBe('SpecError');
    expect((caught as Error).message).toMatch(message);
  });

  it.each([
    [
      'a path item that is not an object',
      '{"openapi":"3.0.0","paths":{"/a":null}}',
      '.json',
      /^OpenAPI path "\/a" must be an object of operations$/,
    ],
    [
      'a path item that is a list',
      'openapi: 3.0.0\npaths:\n  /a: [get]\n',
      '.yaml',
      /^OpenAPI path "\/a" must be an object of operations$/,
    ],
    [
      'an operation that is a list',
      '{"swagger":"2.0","paths":{"/a":{"post":[]}}}',
      '.json',
      /^OpenAPI operation POST \/a must be an object$/,
    ],
    ['paths that are a string', 'swagger: "2.0"\npaths: none\n', '.yaml', /must be an object of path -> operations/],
    ['a JSON string', '"build me an app"', '.json', /single value/],
    ['a YAML scalar', 'just words\n', '.yaml', /single value/],
    ['an empty YAML document', '# only a comment\n', '.yaml', /single value/],
    ['JSON with an unclosed brace', '{"features": [', '.json', /not valid JSON/],
    ['YAML with an unclosed quote', 'title: "open\nfeatures: []\n', '.yaml', /not valid YAML at line \d+, column \d+/],
  ])('%s', (_, body, ext, message) => {
    expect(() => tasksFromSpec(body, ext)).toThrow(SpecError);
    expect(() => tasksFromSpec(body, ext)).toThrow(message);
  });

  it('ignores `x-` extension keys under paths (valid OpenAPI)', () => {
    expect(
      parse('openapi.yaml')
        .tasks.map((t) => t.title)
        .join('\n'),
    ).not.toMatch(/x-/);
    expect(() => tasksFromSpec('{"openapi":"3.0.0","paths":{"x-only":{}}}', '.json')).toThrow(/no operations/);
  });
});

describe('detectSpecKind', () => {
  it.each([
    ['{"features": []}', '.md', 'json'],
    ['{"openapi": "3.0.0", "paths": {}}', '.txt', 'openapi'],
    ['{ broken', '.json', 'json'],
    ['[link](x)\n- item\n', '.md', 'markdown'],
    ['swagger: "2.0"\npaths: {}\n', '.yaml', 'openapi'],
    ['features:\n  - a\n', '.yml', 'yaml'],
    ['openapi: 3.1.0\n', '.txt', 'openapi'],
    ['# Title\n', '.txt', 'markdown'],
    ['plain words only', '.txt', 'text'],
    ['{a: 1, b: [x]}', '.yaml', 'yaml'],
  ] as const)('%j with %s is %s', (body, ext, kind) => {
    expect(detectSpecKind(body, ext)).toBe(kind);
  });
});

// ---- through the server -----------------------------------------------------------------------------------

describe('loki_start with a spec', () => {
  let p: TempProject | undefined;
  let c: Connected | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
    p?.cleanup();
    p = undefined;
  });

  const lokiEntries = (snap: Map<string, string>) => [...snap.keys()].filter((k) => k.startsWith('.loki/'));
  const projectEntries = (snap: Map<string, string>) => new Map([...snap].filter(([k]) => !k.startsWith('.loki/')));

  it.each(BAD)('refuses %s and writes no run, no queue', async (name, message) => {
    const file = `bad${path.extname(name)}`;
    p = tempProject({ files: { [file]: fixture(name), 'README.md': '# project\n' } });
    c = await connect(p);
    const before = snapshot(p.root);
    expect(lokiEntries(before)).toEqual([]);
    const r = await c.call('loki_start', { spec: file });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(new RegExp(`^loki_start: ${message.source.replace(/^\^/, '')}`, message.flags));
    const after = snapshot(p.root);
    expect(projectEntries(after)).toEqual(projectEntries(before));
    // Refused before .loki/ is even created.
    expect(lokiEntries(after)).toEqual([]);
    const status = structured<{ run: unknown }>(await c.call('loki_status', { peek: true }));
    expect(status.run).toBeNull();
  });

  it('refuses malformed inline JSON too', async () => {
    p = tempProject();
    c = await connect(p);
    const r = await c.call('loki_start', { specText: '{"features": [ {"title": "a"}' });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/not valid JSON/);
    expect(fs.existsSync(path.join(p.root, '.loki', 'state', 'run.json'))).toBe(false);
    expect(fs.existsSync(path.join(p.root, '.loki', 'queue'))).toBe(false);
  });

  type FullTask = Required<
    Pick<TaskDraft, 'id' | 'title' | 'description' | 'priority' | 'phase' | 'dependencies' | 'acceptance' | 'source'>
  > & { status: string };
  const asQueued = (d: TaskDraft) => ({
    id: d.id,
    title: d.title,
    description: d.description ?? '',
    priority: d.priority ?? 'medium',
    phase: d.phase ?? 'DEVELOPMENT',
    dependencies: d.dependencies ?? [],
    acceptance: d.acceptance ?? [],
    source: d.source ?? spec(null),
    status: 'pending',
  });

  it.each(GOOD)('queues the tasks the parser gives for %s', async (name, kind) => {
    const file = `docs/spec${path.extname(name)}`;
    p = tempProject({ files: { [file]: fixture(name) } });
    c = await connect(p);
    const started = structured<{ tasks: { queued: number; kind: string; notes: string[] } }>(
      await c.call('loki_start', { spec: file }),
    );
    const parsed = parse(name);
    expect(started.tasks).toEqual({ queued: parsed.tasks.length, kind, notes: parsed.notes });
    const list = structured<{ rows: { id: string; title: string }[]; total: number }>(
      await c.call('loki_task_list', { limit: 200 }),
    );
    expect(list.total).toBe(parsed.tasks.length);
    expect(list.rows.map((r) => [r.id, r.title])).toEqual(parsed.tasks.map((t) => [t.id, t.title]));
    const full = structured<{ tasks: FullTask[]; missing: string[] }>(
      await c.call('loki_task_list', { ids: parsed.tasks.map((t) => t.id!) }),
    );
    expect(full.missing).toEqual([]);
    const pick = (t: FullTask) => ({
      id: t.id,
      title: t.title,
      description: t.description,
      priority: t.priority,
      phase: t.phase,
      dependencies: t.dependencies,
      acceptance: t.acceptance,
      source: t.source,
      status: t.status,
    });
    // What the builder reads is the parse minus the held-out checklist items (judged only at completion).
    const checklist = markHeldOut(itemsFromSpec(parsed.tasks, ''), new Set(keptHeldOut(p)));
    expect(full.tasks.map(pick)).toEqual(withoutHeldOut(parsed.tasks, checklist).map(asQueued));
    for (const held of checklist.filter((i) => i.heldOut)) expect(JSON.stringify(full.tasks)).not.toContain(held.text);
  });

  it('queues a PRD whose features depend on more than 100 others, and the tasks read back in a new session', async () => {
    const features = [
      ...Array.from({ length: 120 }, (_, i) => ({ id: `f${i}`, title: `F ${i}` })),
      { id: 'z', title: 'Z', dependsOn: Array.from({ length: 120 }, (_, i) => `f${i}`) },
    ];
    p = tempProject({ files: { 'prd.json': JSON.stringify({ ['section '.repeat(80)]: { features } }) } });
    c = await connect(p);
    const started = structured<{ tasks: { queued: number } }>(await c.call('loki_start', { spec: 'prd.json' }));
    expect(started.tasks.queued).toBe(121);
    await c.close();
    c = await connect(p);
    const full = structured<{ tasks: FullTask[]; missing: string[] }>(
      await c.call('loki_task_list', { ids: ['t1', 't121'] }),
    );
    expect(full.missing).toEqual([]);
    expect(full.tasks[1]!.dependencies).toHaveLength(100);
    expect(fs.existsSync(path.join(p.root, '.loki', 'quarantine'))).toBe(false);
  });

  it(`queues the first ${MAX_SPEC_TASKS} features of a longer PRD even when an early one depends on a late one`, async () => {
    const features = [
      { id: 'a', title: 'A', dependsOn: ['last'] },
      ...Array.from({ length: MAX_SPEC_TASKS + 4 }, (_, i) => ({
        id: i === MAX_SPEC_TASKS + 3 ? 'last' : `f${i}`,
        title: `F ${i}`,
      })),
    ];
    p = tempProject({ files: { 'prd.json': JSON.stringify({ features }) } });
    c = await connect(p);
    const r = await c.call('loki_start', { spec: 'prd.json' });
    expect(text(r)).toMatch(/Note: the spec gives 305 tasks; the first 300 were queued/);
    expect(structured<{ tasks: { queued: number } }>(r).tasks.queued).toBe(MAX_SPEC_TASKS);
  });
});
