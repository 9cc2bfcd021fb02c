/**
 * The spec corpus (issue 19): ordinary specs in every style a user brings, each read into exactly the tasks and
 * checklist written down for it (tests/fixtures/specs/corpus-expected/), with the invariants that matter whatever
 * the style: every requirement is a task and on the checklist, no empty checklist, no raw JSON or YAML as an
 * item, the title the spec gives, the same result every time. Then the bad input loki_start must refuse through
 * the real protocol, writing nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMarkdown } from '../mcp-server/src/domain/spec/markdown.js';
import { MAX_SPEC_BYTES } from '../mcp-server/src/run/spec.js';
import { CORPUS, EXPECTED, corpusFiles, readCorpusSpec, type CorpusView } from './fixtures/spec-corpus.js';
import { connect, snapshot, structured, tempProject, text, type Connected, type TempProject } from './helpers.js';

const FILES = corpusFiles();
const expected = (file: string) =>
  JSON.parse(fs.readFileSync(path.join(EXPECTED, `${file}.json`), 'utf8')) as CorpusView;

/**
 * What each spec states, in words taken from it by hand: every one must be a task (its title or one of its
 * criteria) and on the checklist. `absent`: what the spec puts out of scope, done, or shows only as an example.
 */
const STATED: Record<string, { present: string[]; absent?: string[] }> = {
  'brief.txt': {
    present: ['random quote on every visit', 'without any JavaScript framework', 'shows the next quote'],
  },
  'checks.md': {
    present: ['`src/greet.js` exists', 'contains `node src/greet.js`', 'all tests pass', '/hello must return 200'],
  },
  'complex-marketplace.md': {
    present: ['Create a shop', 'Leave a review', 'Store photos in S3', 'from search to paid order'],
  },
  'issue-gh.json': {
    present: ['`GET /health` answers 200', 'does not touch the database', 'documented in `README.md`'],
  },
  'issue-tasklist.md': {
    present: ['Normalise the query', 'Reindex existing documents', 'Searching "cafe" returns "café"'],
    absent: ['Add a failing test', 'Thanks for the issue'],
  },
  'mixed-prd.md': {
    present: [
      'Book a free room',
      'current and next meeting',
      'End a meeting early',
      'appears in the calendar within 10 seconds',
      'refreshes every minute',
      '10-inch tablet',
      'lost network',
    ],
    absent: ['other buildings'],
  },
  'nested-bullets.md': {
    present: ['scale a recipe', 'grams under 1 kg', 'teaspoons become tablespoons', 'paste a recipe', 'print view'],
  },
  'numbered-shall.md': {
    present: ['short code of 7 characters', 'HTTP 301', '404 for an unknown code', 'count the visits'],
  },
  'openapi-30.yaml': {
    present: ['GET /books', 'POST /books responds 201', 'POST /books responds 400', 'DELETE /books/{id} responds 204'],
  },
  'openapi-31.json': {
    present: ['GET /notes responds 200', 'POST /notes responds 422', 'GET /notes/{id} responds 404'],
  },
  'openapi-31.yaml': {
    present: ['GET /flags/{key} responds 200', 'GET /flags/{key} responds 404', 'PUT /flags/{key}'],
  },
  'plain-bullets.md': {
    present: ['start a countdown', 'pause and resume', 'ring when it reaches zero', 'remember the last duration'],
  },
  'prd-array.json': { present: ['current weather', 'one row per day', 'highs and lows', 'Celsius and Fahrenheit'] },
  'prd-features.json': {
    present: ['split equally by default', 'add up to the total', 'balances sum to zero', 'Currency conversion'],
  },
  'prd-requirements.yaml': {
    present: ['booked twice', '14 days ahead', 'Cancel my booking', "today's free spots", 'under one second'],
  },
  'prd-tasks-deps.json': { present: ['front matter', 'Render posts', 'index page', 'RSS feed'] },
  'prd-user-stories.json': {
    present: ['a reminder is shown', 'it is no longer due', 'the watering date is stored'],
  },
  'prose-must.md': {
    present: ['copy every file', 'skip files that did not change', 'kept in the backup for 30 days', 'log line'],
  },
  'setext-emphasis.md': {
    present: ['25-minute session with `space`', 'Skip the break', 'sessions of the day as tomatoes'],
    absent: ['dots', 'example, not a requirement', 'must not drift'],
  },
  'standard-app.md': { present: ['Create a shift', 'Volunteers sign up', 'email link', 'phone number'] },
  'table-moscow.md': {
    present: ['Propose a restaurant', 'Vote for one proposal', 'winner at noon', 'Slack notification'],
    absent: ['Dark mode'],
  },
  'table-requirements.md': {
    present: [
      'REQ-1: Create an invoice',
      'two decimals',
      'leaves the unpaid view',
      'REQ-3: Filter invoices by client',
      'one row per invoice',
      'header names every column',
    ],
    absent: ['reminders by email'],
  },
  'user-stories-gherkin.md': {
    present: ['borrow a book', 'copy count drops by one', 'offered a reservation', 'the loan is listed'],
  },
  'user-stories.md': {
    present: ["today's box shows as done", 'it is unticked', 'resets the streak to 0', 'US-3: As a user'],
  },
};

/** The title each spec gives itself (a heading, `title`/`name`/`product`, `info.title`, an issue's title). */
const TITLES: Record<string, string | null> = {
  'brief.txt': 'Make a small web page that shows a random quote on every visit.',
  'checks.md': 'Greeting CLI',
  'complex-marketplace.md': 'Craft Marketplace',
  'issue-gh.json': 'Add a health endpoint',
  'issue-tasklist.md': 'Search results ignore accents: "cafe" does not find "café".',
  'mixed-prd.md': 'Meeting Room Display — PRD',
  'nested-bullets.md': 'Recipe Scaler',
  'numbered-shall.md': 'URL Shortener',
  'openapi-30.yaml': 'Bookshelf API',
  'openapi-31.json': 'Notes Service',
  'openapi-31.yaml': 'Feature Flags',
  'plain-bullets.md': 'Things the timer app needs:',
  'prd-array.json': null,
  'prd-features.json': 'Expense Splitter',
  'prd-requirements.yaml': 'Parking Spot Booking',
  'prd-tasks-deps.json': 'Static blog generator',
  'prd-user-stories.json': 'Plant Watering Reminder',
  'prose-must.md': 'Backup Script',
  'setext-emphasis.md': 'Pomodoro Timer',
  'standard-app.md': 'Volunteer Scheduler',
  'table-moscow.md': 'Team Lunch Poll',
  'table-requirements.md': 'Invoice Tracker — Requirements',
  'user-stories-gherkin.md': 'Library Loans',
  'user-stories.md': 'Habit Tracker',
};

describe('the spec corpus', () => {
  it('has at least 20 specs in every style, each with its expectations written down', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(20);
    expect(Object.keys(STATED).sort()).toEqual(FILES);
    expect(Object.keys(TITLES).sort()).toEqual(FILES);
    const kinds = new Set(FILES.map((f) => readCorpusSpec(f).kind));
    expect([...kinds].sort()).toEqual(['issue', 'json', 'markdown', 'openapi', 'text', 'yaml']);
    expect(fs.readdirSync(EXPECTED).sort()).toEqual(FILES.map((f) => `${f}.json`));
  });

  it.each(FILES)('%s gives exactly its expected tasks, checklist, title and tier', (file) => {
    expect(readCorpusSpec(file)).toStrictEqual(expected(file));
  });

  it.each(FILES)('%s: the title the spec gives', (file) => {
    expect(readCorpusSpec(file).title).toBe(TITLES[file]);
  });

  it.each(FILES)('%s: every requirement is a task and on the checklist; none is empty or raw data', (file) => {
    const view = readCorpusSpec(file);
    expect(view.tasks.length).toBeGreaterThan(0);
    expect(view.checklist.length).toBeGreaterThan(0);
    const items = view.checklist.map((c) => c.replace(/^[cr]-[0-9a-f]{8} /, '').replace(/ \[check: [\w-]+\]$/, ''));
    const taskText = view.tasks.map((t) => [t.title, ...t.acceptance].join('\n')).join('\n');
    for (const phrase of STATED[file]!.present) {
      expect(taskText, `"${phrase}" is in a task`).toContain(phrase);
      // On the checklist: as an item, or as a task whose criteria are its items.
      const inItem = items.some((i) => i.includes(phrase));
      const task = view.tasks.find((t) => t.title.includes(phrase));
      expect(inItem || (task !== undefined && task.acceptance.length > 0), `"${phrase}" is on the checklist`).toBe(
        true,
      );
    }
    for (const phrase of STATED[file]!.absent ?? []) expect(taskText + items.join('\n')).not.toContain(phrase);
    // Every task is covered: its criteria are items, or it is an item itself.
    for (const t of view.tasks) {
      const covered =
        t.acceptance.length > 0
          ? t.acceptance.some((a) => items.includes(a))
          : items.some((i) => i.startsWith(t.title));
      expect(covered, `${t.id} "${t.title}" has a checklist item`).toBe(true);
    }
    // No item or title holds raw JSON or YAML (a key and a value, a brace, a version line); a code span the
    // author wrote (`{"status":"ok"}`) is quoted on purpose.
    const raw = /^\s*[{[]|"[\w-]+"\s*:\s*["{[\d]|^\s*[\w-]+:\s*$|^(openapi|swagger)\s*:/m;
    for (const s of [...items, ...view.tasks.map((t) => t.title)])
      expect(s.replace(/`[^`]*`/g, '`code`'), s).not.toMatch(raw);
    for (const t of view.tasks) expect(t.title.trim()).not.toBe('');
  });

  it.each(FILES)('%s reads the same every time (tasks, ids, checklist)', (file) => {
    const a = readCorpusSpec(file);
    const b = readCorpusSpec(file);
    expect(b).toStrictEqual(a);
    expect(a.tasks.map((t) => t.id)).toEqual(a.tasks.map((_, i) => `t${i + 1}`));
  });

  it('calibrates the tier: up to about six requirements on an empty repository is simple', () => {
    const tiers = Object.fromEntries(FILES.map((f) => [f, readCorpusSpec(f).tier]));
    const standard = ['standard-app.md'];
    const complex = ['complex-marketplace.md'];
    for (const f of FILES) {
      const want = standard.includes(f) ? 'standard' : complex.includes(f) ? 'complex' : 'simple';
      expect(`${f}: ${tiers[f]}`).toBe(`${f}: ${want}`);
    }
  });

  it('parses a large spec part by part to the same tree as in one piece (fences and all)', () => {
    const text = FILES.filter((f) => f.endsWith('.md'))
      .map((f) => fs.readFileSync(path.join(CORPUS, f), 'utf8'))
      .join('\n```\n# a fenced line, not a heading\n```\n\n');
    const strip = (n: object): unknown =>
      JSON.parse(JSON.stringify(n, (k, v: unknown) => (k === 'position' ? undefined : v)));
    expect(strip(parseMarkdown(text, 200))).toStrictEqual(strip(parseMarkdown(text, Infinity)));
    expect(text.length).toBeGreaterThan(200 * 20);
  });

  it('attaches the machine checks the sentences state', () => {
    expect(readCorpusSpec('checks.md').checklist.map((c) => /\[check: ([\w-]+)\]$/.exec(c)?.[1] ?? null)).toEqual([
      'file-exists',
      'file-contains',
      'tests-pass',
      'http',
      'command',
    ]);
  });
});

// ---- bad input through the real protocol ---------------------------------------------------------------------

describe('loki_start refuses bad input with the reason and writes nothing', () => {
  let p: TempProject | undefined;
  let c: Connected | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
    p?.cleanup();
    p = undefined;
  });

  const lokiEntries = (root: string) => [...snapshot(root).keys()].filter((k) => k.startsWith('.loki/'));

  const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
  const FILES_BAD: [string, string | Buffer, RegExp][] = [
    ['empty.md', '', /spec "empty\.md" is empty/],
    ['blank.md', '  \n\n\t\n', /spec "blank\.md" is empty/],
    ['logo.png', PNG, /spec "logo\.png" is a binary file/],
    ['latin1.md', Buffer.from([0x23, 0x20, 0x43, 0x61, 0x66, 0xe9, 0x0a]), /spec "latin1\.md" is not UTF-8 text/],
    ['controls.txt', `${'\u0001\u0002\u0003 data \u0004\u0005'.repeat(20)}`, /looks like a binary file/],
    ['rules.md', '---\n***\n- - -\n', /has no words in it/],
    ['big.md', `# Big\n${'- a requirement\n'.repeat(MAX_SPEC_BYTES / 16 + 1)}`, /is larger than 1048576 bytes/],
    ['broken.json', '{"features": [ {"title": "a"}', /^loki_start: the spec is not valid JSON/],
    ['shape.json', '{"foo": 1, "bar": {"baz": true}}', /the JSON spec has no list of requirements.*\(found foo, bar\)/],
    ['untitled.json', '{"features": [{"priority": "high"}]}', /\/features\/0 has no title: give it a "title"/],
    [
      'criteria.json',
      '{"features": [{"title": "A", "acceptanceCriteria": {"x": 1}}]}',
      /acceptance criteria must be a list/,
    ],
    ['broken.yaml', 'title: "open\nfeatures: []\n', /not valid YAML at line \d+, column \d+/],
    ['no-paths.yaml', 'openapi: 3.1.0\ninfo:\n  title: X\n', /has no `paths`/],
  ];

  it.each(FILES_BAD)('a spec file %s', async (name, content, reason) => {
    p = tempProject({ files: { 'README.md': '# project\n' } });
    fs.writeFileSync(path.join(p.root, name), content);
    c = await connect(p);
    const before = snapshot(p.root);
    const r = await c.call('loki_start', { spec: name });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(reason);
    expect(snapshot(p.root)).toEqual(before);
    expect(lokiEntries(p.root)).toEqual([]);
  });

  it.each([
    ['blank text', '   \n', /`specText` is empty/],
    ['a NUL byte', '# Spec\n\0- one\n', /`specText` is a binary file/],
    ['no words', '***\n', /`specText` has no words in it/],
    ['unparseable JSON', '{"features": [', /not valid JSON/],
    ['an unknown JSON shape', '{"config": {"port": 3000}}', /no list of requirements.*\(found config\)/],
  ])('specText with %s', async (_, specText, reason) => {
    p = tempProject();
    c = await connect(p);
    const r = await c.call('loki_start', { specText });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(reason);
    expect(lokiEntries(p.root)).toEqual([]);
  });
});

// ---- good specs through the real protocol --------------------------------------------------------------------

describe('loki_start on corpus specs', () => {
  let p: TempProject | undefined;
  let c: Connected | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
    p?.cleanup();
    p = undefined;
  });

  it.each(['table-requirements.md', 'issue-gh.json', 'openapi-30.yaml', 'numbered-shall.md'])(
    '%s: the run is titled by the spec, its checklist holds the expected items, its tier is simple',
    async (file) => {
      const want = expected(file);
      p = tempProject({ files: { [`docs/${file}`]: fs.readFileSync(path.join(CORPUS, file), 'utf8') } });
      c = await connect(p);
      const started = structured<{ run: { tier: string; spec: { title: string | null } }; tasks: { queued: number } }>(
        await c.call('loki_start', { spec: `docs/${file}` }),
      );
      expect(started.run.spec.title).toBe(want.title);
      expect(started.run.tier).toBe('simple');
      expect(started.tasks.queued).toBe(want.tasks.length);
      const list = structured<{ items: { id: string; text: string }[] }>(await c.call('loki_checklist_get', {}));
      // Held-out items are not shown before completion; every item shown is one the corpus expects.
      const wantItems = want.checklist.map((x) => x.replace(/ \[check: [\w-]+\]$/, ''));
      expect(list.items.length).toBeGreaterThan(0);
      for (const i of list.items) expect(wantItems).toContain(`${i.id} ${i.text}`);
    },
  );
});
