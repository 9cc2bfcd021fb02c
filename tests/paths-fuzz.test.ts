/**
 * Property test: 10,000 random relative paths against a real directory tree that is full of traps (symlinks to
 * an outside directory, to an outside file, dangling, looping, pointing inside, a FIFO). Whatever the path, a call
 * that succeeds must stay inside the base, a read must never return the outside secret, only the expected error
 * types may be thrown, and at the end the outside directory must be byte-identical: 0 escapes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafeDir, isWithin, splitRelativePath } from '../mcp-server/src/store/paths.js';
import { createExclusive, readFileIfExists, writeFileAtomic } from '../mcp-server/src/store/fsx.js';
import { treeListing } from './helpers.js';
import { FileTooLargeError, PathError } from '../mcp-server/src/errors.js';

const NUM_RUNS = 10_000;
const SECRET = 'SECRET-OUTSIDE-THE-BASE\n';
const OTHER = 'another outside file\n';

let tmp: string;
let baseDir: string;
let outside: string;
let base: SafeDir;
let initialOutside: string[];
/** Everything in the temp dir except the base (outside/ plus the temp dir's own entries). */
let initialAroundBase: string[];
let initialLinks: string[];

function aroundBase(): string[] {
  return treeListing(tmp).filter((l) => !/^[A-Z] base(\/| |$)/.test(l));
}

/** The fixture's symlinks and their targets (must survive the whole run unchanged). */
function fixtureLinks(): string[] {
  return treeListing(baseDir).filter((l) => l.startsWith('L '));
}

beforeAll(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-fuzz-')));
  baseDir = path.join(tmp, 'base');
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  fs.writeFileSync(path.join(outside, 'other.txt'), OTHER);
  fs.mkdirSync(path.join(outside, 'sub'));
  fs.writeFileSync(path.join(outside, 'sub', 'secret.txt'), SECRET);

  fs.mkdirSync(path.join(baseDir, 'docs', 'sub'), { recursive: true });
  fs.mkdirSync(path.join(baseDir, 'tasks'));
  fs.writeFileSync(path.join(baseDir, 'docs', 'readme.md'), '# readme\n');
  fs.writeFileSync(path.join(baseDir, 'docs', 'sub', 'deep.txt'), 'deep\n');
  fs.writeFileSync(path.join(baseDir, 'state.json'), '{}\n');
  fs.symlinkSync(outside, path.join(baseDir, 'link-dir')); // to the outside directory
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(baseDir, 'link-file')); // to an outside file
  fs.symlinkSync(path.join(outside, 'nope.txt'), path.join(baseDir, 'dangling')); // dangling, to outside
  fs.symlinkSync('loop-b', path.join(baseDir, 'loop-a')); // a loop
  fs.symlinkSync('loop-a', path.join(baseDir, 'loop-b'));
  fs.symlinkSync('docs', path.join(baseDir, 'inside-link')); // pointing inside
  fs.symlinkSync('../../outside', path.join(baseDir, 'docs', 'up')); // relative, one level down, to outside
  fs.symlinkSync('../../../outside/secret.txt', path.join(baseDir, 'docs', 'sub', 'secret.txt'));
  fs.symlinkSync(path.join(outside, 'sub'), path.join(baseDir, 'tasks', 'sub')); // a directory link one level down
  if (process.platform !== 'win32') spawnSync('mkfifo', [path.join(baseDir, 'fifo')]);

  base = SafeDir.open(baseDir);
  initialOutside = treeListing(outside);
  initialAroundBase = aroundBase();
  initialLinks = fixtureLinks();
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// The path generator

const FIXTURE_NAMES = [
  'docs',
  'sub',
  'tasks',
  'readme.md',
  'deep.txt',
  'state.json',
  'link-dir',
  'link-file',
  'dangling',
  'loop-a',
  'loop-b',
  'inside-link',
  'up',
  'secret.txt',
  'fifo',
  'outside',
  'base',
  'other.txt',
  'nope.txt',
];
const NORMAL_NAMES = ['a', 'b', 'x.json', 'notes.md', 'new', 'spec', 'data-1', 'my file.txt', '.hidden', 'a.b.c'];
const TRAVERSAL = ['..', '.', '', '...', '..test', 'test..', 'te..st', '....', '.. ', ' ..'];
const SPECIAL = [
  '\\',
  '..\\..',
  '~',
  '~root',
  ':',
  'C:',
  'c:\\x',
  '::$DATA',
  'con',
  'NUL.txt',
  'com1',
  'lpt1',
  'LOKI~1',
  '-rf',
  '\0',
  'a\0b',
  '\n',
  '\t',
  '\r',
  '\x1b[2J',
  '\x7f',
  '\u0085',
];
const LOOKALIKES = [
  '\uFF0E\uFF0E',
  '\uFF0F',
  '\u2215',
  '\u2044',
  '\u2024\u2024',
  '\u2025',
  '\uFE52',
  '\u3002',
  '\uFF3C',
  '\u29F8',
  '\u200D',
  '\u200B',
  '\u202E',
  '\uFEFF',
  '\u00AD',
  '\uD800',
  '\uDFFF',
  '\uE000',
  '\uFFFE',
];
const PERCENT = ['%2e%2e', '%2f', '%5c', '%00', '%252e%252e', '%c0%ae', '%c0%af', '%2e%2e%2f', 'file%20name', '%'];
const UNICODE = [
  'sp\u00E9cification.md',
  'spe\u0301cification.md',
  '\u65E5\u672C',
  '\u{1F600}',
  '\u00C4rger',
  '\u0130',
];

const atom = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(...FIXTURE_NAMES) },
  { weight: 5, arbitrary: fc.constantFrom(...NORMAL_NAMES) },
  { weight: 4, arbitrary: fc.constantFrom(...TRAVERSAL) },
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL) },
  { weight: 3, arbitrary: fc.constantFrom(...LOOKALIKES) },
  { weight: 2, arbitrary: fc.constantFrom(...PERCENT) },
  { weight: 2, arbitrary: fc.constantFrom(...UNICODE) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 300 }).map((n) => 'x'.repeat(n)) },
);

/** A component: usually one atom, sometimes two glued together (`..` + `\u2215`, `a` + `\0`, ...). */
const component = fc.oneof(
  { weight: 4, arbitrary: atom },
  { weight: 1, arbitrary: fc.tuple(atom, atom).map(([a, b]) => a + b) },
);

const separator = fc.oneof(
  { weight: 12, arbitrary: fc.constant('/') },
  { weight: 1, arbitrary: fc.constantFrom('//', '\\', '/./', '/../', '\u2215', '\uFF0F', '%2f') },
);

/** Stands for the absolute path of outside/secret.txt, which only exists once beforeAll has run. */
const ABSOLUTE_SECRET = '\u0000ABS\u0000';

/** Structured paths: components joined by (mostly) `/`; sometimes a leading `/`, `./`, `~/`, `C:` or `\\`. */
const structured = fc
  .tuple(
    fc.array(fc.tuple(component, separator), { minLength: 1, maxLength: 6 }),
    fc.oneof(
      { weight: 12, arbitrary: fc.constant('') },
      { weight: 1, arbitrary: fc.constantFrom('/', './', '~/', 'C:', '\\\\', '../', ABSOLUTE_SECRET) },
    ),
  )
  .map(([pairs, prefix]) => prefix + pairs.map(([c, s], i) => (i === pairs.length - 1 ? c : c + s)).join(''));

const generatedPath = fc.oneof(
  { weight: 8, arbitrary: structured },
  { weight: 1, arbitrary: fc.array(atom, { minLength: 1, maxLength: 8 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
);

// ---------------------------------------------------------------------------------------------------------------
// The property

const ALLOWED_ERRNO = new Set(['EISDIR', 'ENOTDIR', 'EEXIST', 'ENAMETOOLONG']);
/** How often each refusal was seen, to show the traps are actually hit. */
const refusals: Record<string, number> = {};

/** Run one operation; an allowed failure returns undefined, anything else fails the property. */
function attempt<T>(what: string, rel: string, fn: () => T): { ok: true; value: T } | { ok: false } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    const code = err instanceof FileTooLargeError ? 'FILE_TOO_LARGE' : (err as NodeJS.ErrnoException | undefined)?.code;
    if (
      err instanceof PathError ||
      err instanceof FileTooLargeError ||
      (typeof code === 'string' && ALLOWED_ERRNO.has(code))
    ) {
      refusals[code!] = (refusals[code!] ?? 0) + 1;
      return { ok: false };
    }
    throw new Error(
      `${what}(${JSON.stringify(rel)}) threw an unexpected error: ${String((err as Error)?.stack ?? err)}`,
    );
  }
}

function assertInside(what: string, rel: string, absolute: string): void {
  if (!isWithin(base.root, absolute)) throw new Error(`${what}(${JSON.stringify(rel)}) escaped: ${absolute}`);
  // Nothing was normalised away: the result is literally base + "/" + rel (so no `..`, `.` or `//` got through).
  if (absolute !== `${base.root}${path.sep}${rel}`) {
    throw new Error(`${what}(${JSON.stringify(rel)}) resolved to ${absolute}, not to the literal path under the base`);
  }
  const parentReal = fs.realpathSync(path.dirname(absolute));
  if (!isWithin(base.root, parentReal)) {
    throw new Error(`${what}(${JSON.stringify(rel)}) has its parent outside: ${parentReal}`);
  }
  const st = fs.lstatSync(absolute, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) throw new Error(`${what}(${JSON.stringify(rel)}) resolved to a symlink: ${absolute}`);
}

describe('fuzzing the path validator against a trapped tree', () => {
  it(`${NUM_RUNS} random paths: 0 escapes`, () => {
    const stats = { tried: 0, lexicallyValid: 0, resolved: 0, reads: 0, readData: 0, writes: 0, creates: 0 };
    const outsideCount = fs.readdirSync(outside).length;
    const tmpCount = fs.readdirSync(tmp).length;
    const started = performance.now();

    fc.assert(
      fc.property(generatedPath, (raw) => {
        const rel = raw.split(ABSOLUTE_SECRET).join(path.join(outside, 'secret.txt'));
        stats.tried++;
        const lexical = attempt('splitRelativePath', rel, () => splitRelativePath(rel));
        if (lexical.ok) stats.lexicallyValid++;
        let anySuccess = false;

        const variants = [
          { leaf: 'file', allowMissing: false, createParents: false },
          { leaf: 'file', allowMissing: true, createParents: false },
          { leaf: 'dir', allowMissing: false, createParents: false },
          { leaf: 'dir', allowMissing: true, createParents: true },
        ] as const;
        for (const opts of variants) {
          const r = attempt('resolve', rel, () => base.resolve(rel, opts));
          if (!r.ok) continue;
          anySuccess = true;
          assertInside('resolve', rel, r.value.absolute);
          if (r.value.stat?.isSymbolicLink())
            throw new Error(`resolve(${JSON.stringify(rel)}) returned a symlink stat`);
        }

        const read = attempt('readFileIfExists', rel, () => readFileIfExists(base, rel));
        if (read.ok) {
          stats.reads++;
          if (read.value !== undefined) {
            stats.readData++;
            anySuccess = true;
            if (read.value.toString().includes('SECRET'))
              throw new Error(`read(${JSON.stringify(rel)}) returned the secret`);
          }
        }

        const payload = `written via ${JSON.stringify(rel)}`;
        const write = attempt('writeFileAtomic', rel, () => writeFileAtomic(base, rel, payload, { durable: false }));
        if (write.ok) {
          stats.writes++;
          anySuccess = true;
          const abs = base.resolve(rel, { leaf: 'file' }).absolute;
          assertInside('writeFileAtomic', rel, abs);
          if (fs.readFileSync(abs, 'utf8') !== payload)
            throw new Error(`write(${JSON.stringify(rel)}) landed elsewhere`);
        }

        const createRel = lexical.ok ? `${rel}.new` : rel;
        const created = attempt('createExclusive', createRel, () =>
          createExclusive(base, createRel, payload, { durable: false }),
        );
        if (created.ok && created.value) {
          stats.creates++;
          anySuccess = true;
          assertInside('createExclusive', createRel, base.resolve(createRel, { leaf: 'file' }).absolute);
        }

        if (anySuccess) {
          stats.resolved++;
          if (!lexical.ok) throw new Error(`${JSON.stringify(rel)} was refused lexically but an operation succeeded`);
        }
        // Cheap per-run tripwire; the full byte comparison runs once at the end.
        if (fs.readdirSync(outside).length !== outsideCount || fs.readdirSync(tmp).length !== tmpCount) {
          throw new Error(`after ${JSON.stringify(rel)} something appeared or vanished outside the base`);
        }
      }),
      { numRuns: NUM_RUNS },
    );

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `paths tried: ${stats.tried}, lexically valid: ${stats.lexicallyValid}, accepted by at least one operation: ` +
        `${stats.resolved}, reads returning data: ${stats.readData}, atomic writes: ${stats.writes}, ` +
        `exclusive creates: ${stats.creates}, in ${seconds}s; escapes: 0`,
    );
    console.log(`refusals by code: ${JSON.stringify(refusals)}`);
    expect(stats.tried).toBe(NUM_RUNS);
    // The fuzzer must actually reach the file system, not only the lexical checks.
    expect(stats.resolved).toBeGreaterThan(NUM_RUNS / 20);
    expect(stats.writes).toBeGreaterThan(0);
    expect(stats.readData).toBeGreaterThan(0);
    expect(refusals.PATH_SYMLINK ?? 0).toBeGreaterThan(0);
    // 0 escapes: the outside tree is byte-identical, and every trap in the base is still in place.
    expect(treeListing(outside)).toEqual(initialOutside);
    expect(aroundBase()).toEqual(initialAroundBase);
    expect(fixtureLinks()).toEqual(initialLinks);
  });
});
