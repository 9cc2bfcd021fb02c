/**
 * Attack matrix for the one path validator (mcp-server/src/store/paths.ts) and the file operations built on it
 * (mcp-server/src/store/fsx.ts).
 *
 * Part 1 is lexical: every hostile spelling must be refused with the right PathError code, before the file system
 * is touched (checked by comparing a recursive listing of the temp tree before and after), and every harmless but
 * odd-looking name must resolve inside the base.
 * Part 2 is file-system state: symlinks (file, directory, dangling, looping, pointing inside, several levels up),
 * hard links, FIFOs, sockets, type mismatches, temp-name squatting, concurrent creates and swap races. A refused
 * call must leave the outside tree byte-identical.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PathErrorCode } from '../mcp-server/src/errors.js';
import {
  MAX_COMPONENTS,
  MAX_PATH_BYTES,
  SafeDir,
  checkId,
  isWithin,
  splitRelativePath,
} from '../mcp-server/src/store/paths.js';
import {
  createExclusive,
  listNames,
  moveFile,
  readFileIfExists,
  removeFile,
  writeFileAtomic,
} from '../mcp-server/src/store/fsx.js';
import { treeListing } from './helpers.js';
import { PathError } from '../mcp-server/src/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const SECRET = 'TOP-SECRET: the outside file must never be read or written through the base\n';

/** The PathError code thrown by `fn`, or 'NO_ERROR'. Any other error type is re-thrown (and fails the test). */
function codeOf(fn: () => unknown): PathErrorCode | 'NO_ERROR' {
  try {
    fn();
  } catch (err) {
    if (err instanceof PathError) return err.code;
    throw err;
  }
  return 'NO_ERROR';
}

function openFdCount(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

const hasMkfifo = process.platform !== 'win32' && spawnSync('mkfifo', ['--version']).error === undefined;
const hasProcFd = fs.existsSync('/proc/self/fd');

/** The test tree: tmp/{project/{.loki,.loki-evil,.loki2,.loki.bak},outside/secret.txt}. */
let tmp: string;
let project: string;
let outside: string;
let secretPath: string;
let loki: SafeDir;

beforeEach(() => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loki-paths-')));
  project = path.join(tmp, 'project');
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(path.join(project, '.loki'), { recursive: true });
  for (const sib of ['.loki-evil', '.loki2', '.loki.bak']) {
    fs.mkdirSync(path.join(project, sib));
    fs.writeFileSync(path.join(project, sib, 'x'), `evil content in ${sib}\n`);
  }
  fs.mkdirSync(outside);
  secretPath = path.join(outside, 'secret.txt');
  fs.writeFileSync(secretPath, SECRET);
  fs.writeFileSync(path.join(outside, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  loki = SafeDir.open(project).child('.loki', false);
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Run `fn` and assert nothing outside `.loki` (the project siblings and `outside/`) changed. */
function expectOutsideUntouched(fn: () => void): void {
  const before = treeListing(tmp).filter((l) => !l.includes('project/.loki/') && !l.endsWith('project/.loki'));
  fn();
  const after = treeListing(tmp).filter((l) => !l.includes('project/.loki/') && !l.endsWith('project/.loki'));
  expect(after).toEqual(before);
}

// ---------------------------------------------------------------------------------------------------------------
// Part 1: lexical attack matrix

type Rejection = [label: string, input: string, code: PathErrorCode];

const TRAVERSAL: Rejection[] = [
  ['../x', '../x', 'PATH_TRAVERSAL'],
  ['../../etc/passwd', '../../etc/passwd', 'PATH_TRAVERSAL'],
  ['a/../../x', 'a/../../x', 'PATH_TRAVERSAL'],
  ['trailing ..', 'a/..', 'PATH_TRAVERSAL'],
  ['bare ..', '..', 'PATH_TRAVERSAL'],
  ['a/b/../../../x', 'a/b/../../../x', 'PATH_TRAVERSAL'],
  ['a/../b (harmless but still refused)', 'a/../b', 'PATH_TRAVERSAL'],
  ['../.loki-evil/x (prefix sibling)', '../.loki-evil/x', 'PATH_TRAVERSAL'],
  ['../.loki2/x (prefix sibling)', '../.loki2/x', 'PATH_TRAVERSAL'],
  ['../.loki.bak/x (prefix sibling)', '../.loki.bak/x', 'PATH_TRAVERSAL'],
  ['../../outside/secret.txt', '../../outside/secret.txt', 'PATH_TRAVERSAL'],
];

const ABSOLUTE: Rejection[] = [
  ['/etc/passwd', '/etc/passwd', 'PATH_ABSOLUTE'],
  ['/ alone', '/', 'PATH_ABSOLUTE'],
  ['//x (POSIX implementation-defined root)', '//x', 'PATH_ABSOLUTE'],
  ['C:\\x', 'C:\\x', 'PATH_ABSOLUTE'],
  ['c:/windows/win.ini', 'c:/windows/win.ini', 'PATH_ABSOLUTE'],
  ['C:x (drive-relative)', 'C:x', 'PATH_ABSOLUTE'],
  ['UNC \\\\server\\share\\x', '\\\\server\\share\\x', 'PATH_ABSOLUTE'],
  ['\\\\?\\C:\\ (verbatim)', '\\\\?\\C:\\', 'PATH_ABSOLUTE'],
  ['\\\\.\\PhysicalDrive0 (device)', '\\\\.\\PhysicalDrive0', 'PATH_ABSOLUTE'],
  ['\\x (root of current drive)', '\\x', 'PATH_ABSOLUTE'],
];

const EMPTY_AND_DOTS: Rejection[] = [
  ['empty string', '', 'PATH_EMPTY'],
  ['single space', ' ', 'PATH_EMPTY'],
  ['tab', '\t', 'PATH_EMPTY'],
  ['newline', '\n', 'PATH_EMPTY'],
  ['mixed whitespace', ' \r\n\t ', 'PATH_EMPTY'],
  ['.', '.', 'PATH_CHARACTERS'],
  ['./', './', 'PATH_CHARACTERS'],
  ['./a/./b', './a/./b', 'PATH_CHARACTERS'],
  ['a/.', 'a/.', 'PATH_CHARACTERS'],
  ['a//b', 'a//b', 'PATH_CHARACTERS'],
  ['trailing / (a/)', 'a/', 'PATH_CHARACTERS'],
  ['trailing / (a/b/)', 'a/b/', 'PATH_CHARACTERS'],
  ['~', '~', 'PATH_CHARACTERS'],
  ['~/x', '~/x', 'PATH_CHARACTERS'],
  ['~root/.ssh/authorized_keys', '~root/.ssh/authorized_keys', 'PATH_CHARACTERS'],
];

const NUL_AND_CONTROL: Rejection[] = [
  ['NUL alone', '\0', 'PATH_CHARACTERS'],
  ['NUL leading', '\0state.json', 'PATH_CHARACTERS'],
  ['NUL trailing', 'state.json\0', 'PATH_CHARACTERS'],
  ['NUL before extension', 'state.json\0.txt', 'PATH_CHARACTERS'],
  ['NUL then traversal', 'a\0/../../etc/passwd', 'PATH_CHARACTERS'],
  ['NUL after absolute', '/etc/passwd\0', 'PATH_CHARACTERS'],
  ['newline inside', 'a\nb', 'PATH_CHARACTERS'],
  ['CR inside', 'a\rb', 'PATH_CHARACTERS'],
  ['tab inside', 'a\tb', 'PATH_CHARACTERS'],
  ['DEL', 'a\x7fb', 'PATH_CHARACTERS'],
  ['ANSI ESC sequence', '\x1b[31mred\x1b[0m', 'PATH_CHARACTERS'],
  ['backspace', 'ab\x08\x08cd', 'PATH_CHARACTERS'],
  ['C1 NEL U+0085', 'a\u0085b', 'PATH_CHARACTERS'],
  ['U+2028 line separator', 'a\u2028b', 'PATH_CHARACTERS'],
  ['U+2029 paragraph separator', 'a\u2029b', 'PATH_CHARACTERS'],
];

const UNICODE: Rejection[] = [
  ['fullwidth ．．／x', '\uFF0E\uFF0E\uFF0Fx', 'PATH_CHARACTERS'],
  ['fullwidth ．．/x', '\uFF0E\uFF0E/x', 'PATH_CHARACTERS'],
  ['U+2215 division slash', '..\u2215..\u2215etc', 'PATH_CHARACTERS'],
  ['U+2044 fraction slash', '..\u2044x', 'PATH_CHARACTERS'],
  ['U+2024 one dot leader x2', '\u2024\u2024/x', 'PATH_CHARACTERS'],
  ['U+2025 two dot leader', '\u2025', 'PATH_CHARACTERS'],
  ['U+FE52 small full stop', '\uFE52\uFE52/x', 'PATH_CHARACTERS'],
  ['U+FF3C fullwidth backslash', 'a\uFF3Cb', 'PATH_CHARACTERS'],
  ['U+29F8 big solidus', 'a\u29F8b', 'PATH_CHARACTERS'],
  ['U+3002 ideographic full stop', '\u3002\u3002/x', 'PATH_CHARACTERS'],
  ['NFD e + combining acute', 'spe\u0301cification.md', 'PATH_CHARACTERS'],
  ['zero-width joiner', 'a\u200Db', 'PATH_CHARACTERS'],
  ['zero-width space', 'state\u200B.json', 'PATH_CHARACTERS'],
  ['U+202E right-to-left override', 'txt\u202Egpj.md', 'PATH_CHARACTERS'],
  ['U+FEFF BOM', '\uFEFFstate.json', 'PATH_CHARACTERS'],
  ['U+00AD soft hyphen', 'a\u00ADb', 'PATH_CHARACTERS'],
  ['lone high surrogate (would alias U+FFFD)', 'a\uD800b', 'PATH_CHARACTERS'],
  ['lone low surrogate', 'a\uDC00', 'PATH_CHARACTERS'],
  ['private use U+E000', 'a\uE000b', 'PATH_CHARACTERS'],
  ['noncharacter U+FFFE', 'a\uFFFEb', 'PATH_CHARACTERS'],
];

const WINDOWS: Rejection[] = [
  ['..\\..\\x', '..\\..\\x', 'PATH_CHARACTERS'],
  ['a\\b', 'a\\b', 'PATH_CHARACTERS'],
  ['docs\\..\\..\\x', 'docs\\..\\..\\x', 'PATH_CHARACTERS'],
  ['CON', 'CON', 'PATH_RESERVED'],
  ['con lowercase', 'con', 'PATH_RESERVED'],
  ['nul.txt', 'nul.txt', 'PATH_RESERVED'],
  ['NUL .txt (space before extension)', 'NUL .txt', 'PATH_RESERVED'],
  ['COM1', 'COM1', 'PATH_RESERVED'],
  ['com1.log.gz', 'com1.log.gz', 'PATH_RESERVED'],
  ['COM² (superscript)', 'COM\u00B2', 'PATH_RESERVED'],
  ['LPT1', 'LPT1', 'PATH_RESERVED'],
  ['aux in a subdirectory', 'dir/aux.json', 'PATH_RESERVED'],
  ['CONIN$', 'CONIN$', 'PATH_RESERVED'],
  ['state.json. (trailing dot)', 'state.json.', 'PATH_CHARACTERS'],
  ['test.. (trailing dots)', 'test..', 'PATH_CHARACTERS'],
  ['state.json  (trailing space)', 'state.json ', 'PATH_CHARACTERS'],
  ['leading space component', 'a/ b', 'PATH_CHARACTERS'],
  ['state.json:evil (ADS)', 'state.json:evil', 'PATH_CHARACTERS'],
  ['::$DATA', '::$DATA', 'PATH_CHARACTERS'],
  ['state.json::$DATA', 'state.json::$DATA', 'PATH_CHARACTERS'],
  ['LOKI~1 (8.3 short name)', 'LOKI~1', 'PATH_CHARACTERS'],
  ['wildcard *', 'a*', 'PATH_CHARACTERS'],
  ['wildcard ?', 'a?b', 'PATH_CHARACTERS'],
  ['pipe', 'a|b', 'PATH_CHARACTERS'],
  ['angle brackets', '<a>', 'PATH_CHARACTERS'],
  ['double quote', 'a"b', 'PATH_CHARACTERS'],
];

const DASH_AND_LENGTH: Rejection[] = [
  ['leading - (option injection)', '-rf', 'PATH_CHARACTERS'],
  ['--help in a subdirectory', 'a/--help', 'PATH_CHARACTERS'],
  ['- alone', '-', 'PATH_CHARACTERS'],
  ['256-byte component', 'x'.repeat(256), 'PATH_TOO_LONG'],
  ['256-byte multibyte component (128 x é)', '\u00E9'.repeat(128), 'PATH_TOO_LONG'],
  ['5000-byte path', `${'abcd/'.repeat(999)}abcde`, 'PATH_TOO_LONG'],
  ['1000 x a/ then 1001 x ../', `${'a/'.repeat(1000)}${'../'.repeat(1001)}etc/passwd`, 'PATH_TOO_LONG'],
  ['1001 x ../ (under the byte limit, too many components)', `${'../'.repeat(1001)}etc/passwd`, 'PATH_TOO_LONG'],
  [`${MAX_COMPONENTS + 1} components`, `${'a/'.repeat(MAX_COMPONENTS)}a`, 'PATH_TOO_LONG'],
];

const ALL_REJECTIONS: Rejection[] = [
  ...TRAVERSAL,
  ...ABSOLUTE,
  ...EMPTY_AND_DOTS,
  ...NUL_AND_CONTROL,
  ...UNICODE,
  ...WINDOWS,
  ...DASH_AND_LENGTH,
];

describe('lexical rejections', () => {
  it('the matrix has distinct inputs', () => {
    const inputs = ALL_REJECTIONS.map(([, input]) => input);
    expect(new Set(inputs).size).toBe(inputs.length);
    expect(inputs.length).toBeGreaterThanOrEqual(70);
  });

  describe.each([
    ['traversal', TRAVERSAL],
    ['absolute', ABSOLUTE],
    ['empty, dot and tilde', EMPTY_AND_DOTS],
    ['NUL and control characters', NUL_AND_CONTROL],
    ['Unicode look-alikes, invisible, non-NFC', UNICODE],
    ['Windows forms', WINDOWS],
    ['leading dash and length limits', DASH_AND_LENGTH],
  ] as const)('%s', (_group, table) => {
    it.each(table)('%s', (_label, input, code) => {
      expect(codeOf(() => splitRelativePath(input))).toBe(code);
      const before = treeListing(tmp);
      // The same input through every entry point fails the same way and touches nothing.
      expect(codeOf(() => loki.resolve(input, { leaf: 'file', allowMissing: true, createParents: true }))).toBe(code);
      expect(codeOf(() => loki.resolve(input, { leaf: 'dir' }))).toBe(code);
      expect(codeOf(() => readFileIfExists(loki, input))).toBe(code);
      expect(codeOf(() => writeFileAtomic(loki, input, 'pwned'))).toBe(code);
      expect(codeOf(() => createExclusive(loki, input, 'pwned'))).toBe(code);
      expect(codeOf(() => removeFile(loki, input))).toBe(code);
      expect(codeOf(() => listNames(loki, input))).toBe(code);
      expect(codeOf(() => SafeDir.open(project).child(input, true))).toBe(code);
      expect(treeListing(tmp)).toEqual(before);
    });
  });

  it('an absolute path that points inside .loki is still refused', () => {
    const inside = path.join(loki.root, 'state.json');
    fs.writeFileSync(inside, '{}');
    const before = treeListing(tmp);
    expect(codeOf(() => splitRelativePath(inside))).toBe('PATH_ABSOLUTE');
    expect(codeOf(() => readFileIfExists(loki, inside))).toBe('PATH_ABSOLUTE');
    expect(codeOf(() => writeFileAtomic(loki, inside, 'x'))).toBe('PATH_ABSOLUTE');
    expect(codeOf(() => writeFileAtomic(loki, loki.root, 'x'))).toBe('PATH_ABSOLUTE');
    expect(treeListing(tmp)).toEqual(before);
  });

  it('pathological lengths are refused fast, with no stack overflow', () => {
    const started = performance.now();
    for (const input of [
      `${'a/'.repeat(1000)}${'../'.repeat(1001)}x`,
      '../'.repeat(100_000),
      'a/'.repeat(500_000),
      'x'.repeat(1_000_000),
      `${'a'.repeat(255)}/`.repeat(17),
    ]) {
      expect(codeOf(() => splitRelativePath(input))).toBe('PATH_TOO_LONG');
      expect(codeOf(() => loki.resolve(input, { leaf: 'file', allowMissing: true, createParents: true }))).toBe(
        'PATH_TOO_LONG',
      );
    }
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('exactly at the limits is accepted: 255-byte component, 64 components, 4096 bytes', () => {
    expect(splitRelativePath('x'.repeat(255))).toHaveLength(1);
    expect(splitRelativePath(`${'a/'.repeat(MAX_COMPONENTS - 1)}a`)).toHaveLength(MAX_COMPONENTS);
    const big = `${`${'y'.repeat(63)}/`.repeat(MAX_COMPONENTS - 1)}${'z'.repeat(MAX_PATH_BYTES - 64 * (MAX_COMPONENTS - 1))}`;
    expect(Buffer.byteLength(big)).toBe(MAX_PATH_BYTES);
    expect(splitRelativePath(big)).toHaveLength(MAX_COMPONENTS);
    expect(codeOf(() => splitRelativePath(`${big}z`))).toBe('PATH_TOO_LONG');
  });
});

describe('type confusion', () => {
  const weird: [string, unknown][] = [
    ['number', 42],
    ['NaN', Number.NaN],
    ['bigint', 1n],
    ['boolean', true],
    ['array of one string', ['state.json']],
    ['array of traversal parts', ['..', '..', 'etc', 'passwd']],
    ['plain object', {}],
    ['object with custom toString', { toString: () => '../../etc/passwd' }],
    ['String object', new String('state.json')],
    ['Buffer', Buffer.from('state.json')],
    ['URL', new URL('file:///etc/passwd')],
    ['function', () => 'state.json'],
    ['symbol', Symbol('state.json')],
    ['null', null],
    ['undefined', undefined],
  ];

  it.each(weird)('splitRelativePath(%s) throws PATH_TYPE', (_label, value) => {
    expect(codeOf(() => splitRelativePath(value))).toBe('PATH_TYPE');
    expect(codeOf(() => loki.resolve(value as string, { leaf: 'file', allowMissing: true }))).toBe('PATH_TYPE');
    expect(codeOf(() => writeFileAtomic(loki, value as string, 'x'))).toBe('PATH_TYPE');
  });

  it.each(weird)('checkId(%s) throws PATH_CHARACTERS', (_label, value) => {
    expect(codeOf(() => checkId(value))).toBe('PATH_CHARACTERS');
  });

  it('the custom toString is never called', () => {
    let called = 0;
    const evil = {
      toString: () => {
        called++;
        return 'x';
      },
    };
    codeOf(() => splitRelativePath(evil));
    codeOf(() => checkId(evil));
    expect(called).toBe(0);
  });
});

describe('checkId', () => {
  it.each([
    ['../../x', '../../x'],
    ['.', '.'],
    ['..', '..'],
    ['a/b', 'a/b'],
    ['a\\b', 'a\\b'],
    ['con', 'con'],
    ['nul.json', 'nul.json'],
    ['com1', 'com1'],
    ['lpt9.log', 'lpt9.log'],
    ['empty', ''],
    ['300 chars', 'a'.repeat(300)],
    ['65 chars', 'a'.repeat(65)],
    ['fullwidth dots ．．', '\uFF0E\uFF0E'],
    ['fullwidth letter ａ', '\uFF41'],
    ['U+2215 inside', 'a\u2215b'],
    ['uppercase', 'Task-1'],
    ['all caps', 'TASK'],
    ['leading dash', '-rf'],
    ['leading dot', '.hidden'],
    ['leading underscore', '_x'],
    ['double dot inside', 'a..b'],
    ['space', 'a b'],
    ['NUL', 'task\0'],
    ['newline', 'task\n'],
    ['colon', 'a:b'],
    ['tilde', '~x'],
    ['NFD', 'e\u0301'],
    ['ZWJ', 'a\u200Db'],
  ])('refuses %s', (_label, id) => {
    expect(codeOf(() => checkId(id))).toBe('PATH_CHARACTERS');
  });

  it.each(['task-1', 'a', '0', 'a.b', 'x_y', 'con-1', 'console', 'nul1', 'a'.repeat(64)])('accepts %s', (id) => {
    expect(checkId(id)).toBe(id);
    // An accepted id is always a valid single path component.
    expect(splitRelativePath(`${id}.json`)).toEqual([`${id}.json`]);
  });
});

describe('allowed inputs resolve inside the base', () => {
  const ALLOWED: [string, string][] = [
    ['..test', '..test'],
    ['..hidden dir', '..hidden/x'],
    ['...a', '...a'],
    ['te..st', 'te..st'],
    ['%2e%2e (percent is literal)', '%2e%2e'],
    ['%2e%2e/%2e%2e/etc/passwd', '%2e%2e/%2e%2e/etc/passwd'],
    ['..%2f..%2fetc%2fpasswd', '..%2f..%2fetc%2fpasswd'],
    ['double encoded %252e%252e', '%252e%252e/%252e%252e/x'],
    ['overlong UTF-8 %c0%ae%c0%ae', '%c0%ae%c0%ae/%c0%af'],
    ['encoded backslash %5c', '..%5c..%5cx'],
    ['encoded NUL %00', 'state.json%00.txt'],
    ['file%20name', 'file%20name'],
    ['NFC spécification.md', 'sp\u00E9cification.md'],
    ['German umlauts', '\u00C4rger/Stra\u00DFe.md'],
    ['CJK', '\u65E5\u672C\u8A9E/\u30D5\u30A1\u30A4\u30EB.md'],
    ['emoji (astral plane)', '\u{1F4C1}/\u{1F600}.txt'],
    ['spaces inside', 'my notes/a b c.md'],
    ['dot-prefixed hidden file', '.hidden'],
    ['state.json', 'state.json'],
    ['a.b.c', 'a.b.c'],
    ['names that only start like devices', 'console.log'],
    ['CONFIG', 'CONFIG'],
    ['comma, plus, equals, brackets', 'a,b+c=d[e]{f}'],
    ['.LOKI/x (case variant: a different directory on a case-sensitive FS)', '.LOKI/x'],
    ['.loki-evil/x (a child named like the sibling)', '.loki-evil/x'],
    ['255-byte component', 'x'.repeat(255)],
    ['60 nested directories', `${'a/'.repeat(60)}leaf.txt`],
  ];

  it('the table has distinct inputs', () => {
    expect(new Set(ALLOWED.map(([, i]) => i)).size).toBe(ALLOWED.length);
  });

  it.each(ALLOWED)('%s', (_label, input) => {
    const parts = splitRelativePath(input);
    expect(parts.join('/')).toBe(input);
    expectOutsideUntouched(() => {
      const { absolute, stat } = loki.resolve(input, { leaf: 'file', allowMissing: true, createParents: true });
      expect(stat).toBeUndefined();
      expect(absolute).toBe(path.join(loki.root, ...parts));
      expect(isWithin(loki.root, absolute)).toBe(true);
      expect(isWithin(loki.root, fs.realpathSync(path.dirname(absolute)))).toBe(true);
      // createExclusive rather than writeFileAtomic: its temp name would exceed 255 bytes for the longest name.
      expect(createExclusive(loki, input, `payload ${input}`)).toBe(true);
      expect(createExclusive(loki, input, 'second')).toBe(false);
      expect(readFileIfExists(loki, input)?.toString()).toBe(`payload ${input}`);
      expect(fs.realpathSync(absolute)).toBe(absolute);
      if (Buffer.byteLength(parts[parts.length - 1]!) < 200) {
        writeFileAtomic(loki, input, 'replaced');
        expect(fs.readFileSync(absolute, 'utf8')).toBe('replaced');
      }
    });
  });

  it('percent sequences are never decoded: %2e%2e/%2e%2e/etc/passwd stays a file inside', () => {
    writeFileAtomic(loki, '%2e%2e/%2e%2e/etc/passwd', 'literal');
    expect(fs.readFileSync(path.join(loki.root, '%2e%2e', '%2e%2e', 'etc', 'passwd'), 'utf8')).toBe('literal');
    expect(fs.readFileSync(path.join(outside, 'passwd'), 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
  });
});

describe('prefix siblings of .loki', () => {
  const siblings = ['.loki-evil', '.loki2', '.loki.bak'];

  it.each(siblings)('isWithin(.loki, %s) is false; .loki itself and its children are within', (sib) => {
    const sibPath = path.join(project, sib);
    expect(isWithin(loki.root, sibPath)).toBe(false);
    expect(isWithin(loki.root, path.join(sibPath, 'x'))).toBe(false);
    expect(isWithin(loki.root, path.join(loki.root, '..', sib, 'x'))).toBe(false);
    expect(isWithin(loki.root, path.join(loki.root, sib))).toBe(true);
  });

  it('isWithin is component-aware in both directions', () => {
    expect(isWithin(loki.root, loki.root)).toBe(true);
    expect(isWithin(loki.root, path.join(loki.root, '..test'))).toBe(true);
    expect(isWithin(loki.root, path.join(loki.root, '..'))).toBe(false);
    expect(isWithin(loki.root, project)).toBe(false);
    expect(isWithin(loki.root, '/')).toBe(false);
    expect(isWithin(`${loki.root}/`, path.join(loki.root, 'x'))).toBe(true);
  });

  it.each(siblings)('a SafeDir rooted at .loki can never reach %s', (sib) => {
    const sibPath = path.join(project, sib);
    expectOutsideUntouched(() => {
      for (const input of [`../${sib}/x`, `${sibPath}/x`, `..\\${sib}\\x`, `./../${sib}/x`]) {
        const code = codeOf(() => readFileIfExists(loki, input));
        expect(['PATH_TRAVERSAL', 'PATH_ABSOLUTE', 'PATH_CHARACTERS']).toContain(code);
        expect(codeOf(() => writeFileAtomic(loki, input, 'pwned'))).toBe(code);
      }
      // The same name *without* traversal is a child of .loki, not the sibling.
      expect(readFileIfExists(loki, `${sib}/x`)).toBeUndefined();
      writeFileAtomic(loki, `${sib}/x`, 'mine');
      expect(fs.readFileSync(path.join(loki.root, sib, 'x'), 'utf8')).toBe('mine');
    });
    expect(fs.readFileSync(path.join(sibPath, 'x'), 'utf8')).toBe(`evil content in ${sib}\n`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Part 2: file-system state attacks

describe('symlinks', () => {
  it('file symlink to outside: read refused with PATH_SYMLINK', () => {
    fs.symlinkSync(secretPath, path.join(loki.root, 'state.json'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => readFileIfExists(loki, 'state.json'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => loki.resolve('state.json', { leaf: 'file' }))).toBe('PATH_SYMLINK');
    });
  });

  it('file symlink to outside: writeFileAtomic, createExclusive, removeFile, moveFile refused; outside identical', () => {
    fs.symlinkSync(secretPath, path.join(loki.root, 'state.json'));
    const fds = openFdCount();
    expectOutsideUntouched(() => {
      expect(codeOf(() => writeFileAtomic(loki, 'state.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => createExclusive(loki, 'state.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => removeFile(loki, 'state.json'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => moveFile(loki, 'state.json', 'stolen.json'))).toBe('PATH_SYMLINK');
    });
    expect(openFdCount()).toBe(fds);
    expect(fs.readFileSync(secretPath, 'utf8')).toBe(SECRET);
    expect(fs.lstatSync(path.join(loki.root, 'state.json')).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(path.join(loki.root, 'stolen.json'))).toBe(false);
  });

  it('dangling symlink to a non-existent outside path: nothing appears outside', () => {
    const target = path.join(outside, 'created-by-attack.json');
    fs.symlinkSync(target, path.join(loki.root, 'new.json'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => createExclusive(loki, 'new.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => writeFileAtomic(loki, 'new.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(readFileIfExistsCode(loki, 'new.json')).toBe('PATH_SYMLINK');
    });
    expect(fs.existsSync(target)).toBe(false);
  });

  it('symlinked intermediate directory (tasks -> outside): tasks/passwd refused for every operation', () => {
    fs.symlinkSync(outside, path.join(loki.root, 'tasks'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => readFileIfExists(loki, 'tasks/passwd'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => readFileIfExists(loki, 'tasks/secret.txt'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => writeFileAtomic(loki, 'tasks/passwd', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => writeFileAtomic(loki, 'tasks/new/deeper.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => createExclusive(loki, 'tasks/new.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => removeFile(loki, 'tasks/passwd'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => moveFile(loki, 'tasks/secret.txt', 'mine.txt'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => listNames(loki, 'tasks'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => loki.child('tasks', true))).toBe('PATH_SYMLINK');
    });
  });

  it('relative symlink several levels up (a/b/c/up -> ../../../../../outside)', () => {
    fs.mkdirSync(path.join(loki.root, 'a', 'b', 'c'), { recursive: true });
    fs.symlinkSync('../../../../../outside', path.join(loki.root, 'a', 'b', 'c', 'up'));
    expect(fs.readFileSync(path.join(loki.root, 'a/b/c/up/secret.txt'), 'utf8')).toBe(SECRET); // the link works
    expectOutsideUntouched(() => {
      expect(codeOf(() => readFileIfExists(loki, 'a/b/c/up/secret.txt'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => writeFileAtomic(loki, 'a/b/c/up/secret.txt', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => createExclusive(loki, 'a/b/c/up/x/y/z.json', 'pwned'))).toBe('PATH_SYMLINK');
    });
  });

  it('symlink at the top of a deep path (a -> outside) with createParents creates nothing outside', () => {
    fs.symlinkSync(outside, path.join(loki.root, 'a'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => writeFileAtomic(loki, 'a/b/c/d/e.json', 'pwned'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => loki.resolve('a/b/c', { leaf: 'dir', allowMissing: true, createParents: true }))).toBe(
        'PATH_SYMLINK',
      );
    });
    expect(fs.existsSync(path.join(outside, 'b'))).toBe(false);
  });

  it('the base itself opened through a symlink works (like macOS /tmp)', () => {
    const alias = path.join(tmp, 'project-alias');
    fs.symlinkSync(project, alias);
    const base = SafeDir.open(alias);
    expect(base.root).toBe(project);
    const viaAlias = base.child('.loki', false);
    expect(viaAlias.root).toBe(loki.root);
    writeFileAtomic(viaAlias, 'state.json', '{"ok":true}');
    expect(fs.readFileSync(path.join(project, '.loki', 'state.json'), 'utf8')).toBe('{"ok":true}');
    expect(readFileIfExists(viaAlias, 'state.json')?.toString()).toBe('{"ok":true}');
    // A symlink to a symlink to the base also works.
    fs.symlinkSync(alias, path.join(tmp, 'alias-of-alias'));
    expect(SafeDir.open(path.join(tmp, 'alias-of-alias')).root).toBe(project);
  });

  it('.loki itself a symlink to outside: child(".loki") refuses with PATH_SYMLINK', () => {
    const project2 = path.join(tmp, 'project2');
    fs.mkdirSync(project2);
    fs.symlinkSync(outside, path.join(project2, '.loki'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => SafeDir.open(project2).child('.loki', true))).toBe('PATH_SYMLINK');
      expect(codeOf(() => SafeDir.open(project2).child('.loki', false))).toBe('PATH_SYMLINK');
      expect(codeOf(() => writeFileAtomic(SafeDir.open(project2), '.loki/state.json', 'pwned'))).toBe('PATH_SYMLINK');
    });
  });

  it('.loki a dangling symlink: child(".loki", true) refuses and creates nothing', () => {
    const project3 = path.join(tmp, 'project3');
    fs.mkdirSync(project3);
    fs.symlinkSync(path.join(outside, 'fresh'), path.join(project3, '.loki'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => SafeDir.open(project3).child('.loki', true))).toBe('PATH_SYMLINK');
    });
    expect(fs.existsSync(path.join(outside, 'fresh'))).toBe(false);
  });

  it('symlink loops (two-link cycle and self-link) are refused, not followed', () => {
    fs.symlinkSync('loop-b', path.join(loki.root, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(loki.root, 'loop-b'));
    fs.symlinkSync('self', path.join(loki.root, 'self'));
    expectOutsideUntouched(() => {
      for (const rel of ['loop-a', 'loop-b', 'self', 'loop-a/x', 'self/x/y']) {
        expect(codeOf(() => readFileIfExists(loki, rel))).toBe('PATH_SYMLINK');
        expect(codeOf(() => writeFileAtomic(loki, rel, 'x'))).toBe('PATH_SYMLINK');
        expect(codeOf(() => createExclusive(loki, rel, 'x'))).toBe('PATH_SYMLINK');
        expect(codeOf(() => listNames(loki, rel))).toBe('PATH_SYMLINK');
      }
    });
  });

  it('a symlink pointing inside the base is refused too', () => {
    fs.mkdirSync(path.join(loki.root, 'docs'));
    fs.writeFileSync(path.join(loki.root, 'docs', 'real.md'), 'real');
    fs.symlinkSync('real.md', path.join(loki.root, 'docs', 'alias.md'));
    fs.symlinkSync('docs', path.join(loki.root, 'docs-link'));
    expect(readFileIfExists(loki, 'docs/real.md')?.toString()).toBe('real');
    expect(codeOf(() => readFileIfExists(loki, 'docs/alias.md'))).toBe('PATH_SYMLINK');
    expect(codeOf(() => readFileIfExists(loki, 'docs-link/real.md'))).toBe('PATH_SYMLINK');
    expect(codeOf(() => writeFileAtomic(loki, 'docs/alias.md', 'x'))).toBe('PATH_SYMLINK');
    expect(fs.readFileSync(path.join(loki.root, 'docs', 'real.md'), 'utf8')).toBe('real');
  });

  it('moveFile cannot move an inside file onto a symlink or into a symlinked directory', () => {
    fs.writeFileSync(path.join(loki.root, 'mine.json'), 'mine');
    fs.symlinkSync(secretPath, path.join(loki.root, 'dest.json'));
    fs.symlinkSync(outside, path.join(loki.root, 'out'));
    expectOutsideUntouched(() => {
      expect(codeOf(() => moveFile(loki, 'mine.json', 'dest.json'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => moveFile(loki, 'mine.json', 'out/mine.json'))).toBe('PATH_SYMLINK');
      expect(codeOf(() => moveFile(loki, 'mine.json', '../../outside/mine.json'))).toBe('PATH_TRAVERSAL');
    });
    expect(fs.readFileSync(path.join(loki.root, 'mine.json'), 'utf8')).toBe('mine');
  });
});

function readFileIfExistsCode(dir: SafeDir, rel: string): PathErrorCode | 'NO_ERROR' | 'UNDEFINED' {
  let out: Buffer | undefined;
  const code = codeOf(() => {
    out = readFileIfExists(dir, rel);
  });
  return code === 'NO_ERROR' && out === undefined ? 'UNDEFINED' : code;
}

describe('hard links, special files, type mismatches, devices', () => {
  it('hard link to an outside file: a write replaces the link, the outside file unchanged, no fd leaked', () => {
    const log = path.join(outside, 'audit.jsonl');
    fs.writeFileSync(log, '{"n":1}\n');
    fs.linkSync(log, path.join(loki.root, 'events.jsonl'));
    const fds = openFdCount();
    // writeFileAtomic replaces the link (rename), so the outside inode keeps its content.
    writeFileAtomic(loki, 'events.jsonl', 'fresh\n');
    expect(openFdCount()).toBe(fds);
    expect(fs.readFileSync(log, 'utf8')).toBe('{"n":1}\n');
    expect(fs.statSync(log).nlink).toBe(1);
  });

  it.skipIf(!hasMkfifo)('FIFO: readFileIfExists throws PATH_NOT_FILE and does not hang', () => {
    const fifo = path.join(loki.root, 'state.json');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const started = performance.now();
    expect(codeOf(() => readFileIfExists(loki, 'state.json'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => writeFileAtomic(loki, 'state.json', 'x'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => createExclusive(loki, 'state.json', 'x'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => loki.resolve('state.json', { leaf: 'dir' }))).toBe('PATH_NOT_DIRECTORY');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });

  it.skipIf(process.platform === 'win32')('unix socket: refused with PATH_NOT_FILE', async () => {
    const sock = path.join(loki.root, 'agent.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      expect(codeOf(() => readFileIfExists(loki, 'agent.sock'))).toBe('PATH_NOT_FILE');
      expect(codeOf(() => loki.resolve('agent.sock/x', { leaf: 'file', allowMissing: true }))).toBe(
        'PATH_NOT_DIRECTORY',
      );
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a directory where a file is expected', () => {
    fs.mkdirSync(path.join(loki.root, 'state.json'));
    const before = treeListing(tmp);
    expect(codeOf(() => readFileIfExists(loki, 'state.json'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => writeFileAtomic(loki, 'state.json', 'x'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => createExclusive(loki, 'state.json', 'x'))).toBe('PATH_NOT_FILE');
    expect(codeOf(() => removeFile(loki, 'state.json'))).toBe('PATH_NOT_FILE');
    expect(treeListing(tmp)).toEqual(before);
  });

  it('a file where a directory is expected', () => {
    fs.writeFileSync(path.join(loki.root, 'tasks'), 'I am a file');
    const before = treeListing(tmp);
    expect(codeOf(() => loki.resolve('tasks', { leaf: 'dir' }))).toBe('PATH_NOT_DIRECTORY');
    expect(codeOf(() => writeFileAtomic(loki, 'tasks/x.json', 'x'))).toBe('PATH_NOT_DIRECTORY');
    expect(codeOf(() => readFileIfExists(loki, 'tasks/x.json'))).toBe('PATH_NOT_DIRECTORY');
    expect(codeOf(() => listNames(loki, 'tasks'))).toBe('PATH_NOT_DIRECTORY');
    expect(codeOf(() => loki.child('tasks', true))).toBe('PATH_NOT_DIRECTORY');
    expect(codeOf(() => SafeDir.open(path.join(loki.root, 'tasks')))).toBe('PATH_NOT_DIRECTORY');
    expect(treeListing(tmp)).toEqual(before);
  });

  it('crossing onto another mounted file system is refused with PATH_OTHER_DEVICE', (ctx) => {
    const rootDev = fs.statSync('/').dev;
    const mount = ['proc', 'sys', 'dev'].find((m) => {
      try {
        const st = fs.lstatSync(`/${m}`);
        return st.isDirectory() && st.dev !== rootDev;
      } catch {
        return false;
      }
    });
    if (!mount) {
      ctx.skip();
      return;
    }
    const root = SafeDir.open('/');
    expect(codeOf(() => root.resolve(mount, { leaf: 'dir' }))).toBe('PATH_OTHER_DEVICE');
    expect(codeOf(() => readFileIfExists(root, `${mount}/version`))).toBe('PATH_OTHER_DEVICE');
  });
});

describe('temp names and concurrency', () => {
  it('temp-name squatting: symlinks named like .state.json.<x>.tmp do not redirect writeFileAtomic', () => {
    fs.writeFileSync(path.join(loki.root, 'state.json'), 'v1');
    const squat = ['.state.json.tmp', '.state.json.000000000000.tmp', '.state.json.ffffffffffff.tmp'];
    for (let i = 0; i < 200; i++) squat.push(`.state.json.${crypto.randomBytes(6).toString('hex')}.tmp`);
    for (const name of squat) fs.symlinkSync(secretPath, path.join(loki.root, name));
    expectOutsideUntouched(() => {
      for (let i = 0; i < 20; i++) writeFileAtomic(loki, 'state.json', `v${i + 2}`, { durable: false });
      writeFileAtomic(loki, 'fresh.json', 'new', { durable: false });
    });
    expect(fs.readFileSync(path.join(loki.root, 'state.json'), 'utf8')).toBe('v21');
    for (const name of squat) expect(fs.lstatSync(path.join(loki.root, name)).isSymbolicLink()).toBe(true);
    // No temp file is left behind.
    const leftovers = fs.readdirSync(loki.root).filter((n) => n.endsWith('.tmp') && !squat.includes(n));
    expect(leftovers).toEqual([]);
  });

  it('two createExclusive calls on the same name: exactly one wins', () => {
    expect(createExclusive(loki, 'claims/task-1.lock', 'first')).toBe(true);
    expect(createExclusive(loki, 'claims/task-1.lock', 'second')).toBe(false);
    expect(fs.readFileSync(path.join(loki.root, 'claims', 'task-1.lock'), 'utf8')).toBe('first');
  });

  it('eight processes racing createExclusive on one name: exactly one wins', async () => {
    const bundle = path.join(tmp, 'bundle.mjs');
    const src = fileURLToPath(new URL('../mcp-server/src/store', import.meta.url));
    buildSync({
      stdin: {
        contents: `export { SafeDir } from ${JSON.stringify(path.join(src, 'paths.ts'))};\nexport { createExclusive } from ${JSON.stringify(path.join(src, 'fsx.ts'))};\n`,
        resolveDir: src,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: bundle,
      logLevel: 'silent',
    });
    const script = path.join(tmp, 'claim.mjs');
    fs.writeFileSync(
      script,
      `import { SafeDir, createExclusive } from ${JSON.stringify(bundle)};
const [base, start, id] = process.argv.slice(2);
const dir = SafeDir.open(base);
while (Date.now() < Number(start)) {}
process.stdout.write(createExclusive(dir, 'claims/lock.json', id) ? 'WIN' : 'LOSE');
`,
    );
    const start = Date.now() + 1500;
    const runs = Array.from({ length: 8 }, (_, i) => {
      const child = spawn(process.execPath, [script, loki.root, String(start), `proc-${i}`], { stdio: 'pipe' });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<string>((resolve) => child.on('exit', () => resolve(out)));
    });
    const results = await Promise.all(runs);
    expect(results.filter((r) => r === 'WIN')).toHaveLength(1);
    expect(results.filter((r) => r === 'LOSE')).toHaveLength(7);
    const winner = results.indexOf('WIN');
    expect(fs.readFileSync(path.join(loki.root, 'claims', 'lock.json'), 'utf8')).toBe(`proc-${winner}`);
  });
});

/** Start a plain-JS child process that keeps swapping things under the base until the stop file appears. */
function startSwapper(body: string): { ready: Promise<void>; stop: () => Promise<number> } {
  const stopFile = path.join(tmp, 'stop-swapping');
  const script = path.join(tmp, `swapper-${crypto.randomBytes(4).toString('hex')}.mjs`);
  fs.writeFileSync(
    script,
    `import fs from 'node:fs';
const stopFile = ${JSON.stringify(stopFile)};
const deadline = Date.now() + 30_000;
let swaps = 0;
const quiet = (f) => { try { f(); } catch {} };
process.stdout.write('ready\\n');
while (Date.now() < deadline && !fs.existsSync(stopFile)) {
${body}
  swaps++;
}
process.stdout.write('swaps=' + swaps + '\\n');
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise<void>((resolve) =>
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    }),
  );
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    ready,
    stop: async () => {
      await ready;
      fs.writeFileSync(stopFile, '');
      await exited;
      fs.rmSync(stopFile);
      return Number(/swaps=(\d+)/.exec(out)?.[1] ?? 0);
    },
  };
}

describe('swap races', () => {
  it('a regular file and a symlink-to-outside alternating at the same name: never reads the secret, never writes outside', async () => {
    const dir = loki.root;
    fs.writeFileSync(path.join(dir, 'state.json'), 'inside');
    const before = treeListing(outside);
    const swapper = startSwapper(`
  quiet(() => fs.symlinkSync(${JSON.stringify(secretPath)}, ${JSON.stringify(path.join(dir, '.swap-link'))}));
  quiet(() => fs.renameSync(${JSON.stringify(path.join(dir, '.swap-link'))}, ${JSON.stringify(path.join(dir, 'state.json'))}));
  quiet(() => fs.writeFileSync(${JSON.stringify(path.join(dir, '.swap-file'))}, 'inside'));
  quiet(() => fs.renameSync(${JSON.stringify(path.join(dir, '.swap-file'))}, ${JSON.stringify(path.join(dir, 'state.json'))}));`);
    await swapper.ready;
    const outcomes: Record<string, number> = {};
    const note = (k: string): void => {
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    };
    const allowed = (err: unknown): string => {
      if (err instanceof PathError) return err.code;
      const code = (err as NodeJS.ErrnoException).code;
      // openForAppend reports a last-moment symlink as the raw ELOOP from O_NOFOLLOW.
      if (code === 'ELOOP' || code === 'ENOENT') return code;
      throw err;
    };
    const t0 = performance.now();
    try {
      // ~300 iterations, stretched to at least a second so the swapper gets scheduled often enough.
      for (let i = 0; i < 20_000 && (i < 300 || performance.now() - t0 < 1000); i++) {
        try {
          const got = readFileIfExists(loki, 'state.json');
          expect(got?.toString()).not.toBe(SECRET);
          note(`read:${got === undefined ? 'missing' : 'ok'}`);
        } catch (err) {
          note(`read:${allowed(err)}`);
        }
        try {
          writeFileAtomic(loki, 'state.json', `mine ${i}`, { durable: false });
          note('write:ok');
        } catch (err) {
          note(`write:${allowed(err)}`);
        }
      }
    } finally {
      const swaps = await swapper.stop();
      console.log(`leaf swap race: ${swaps} swaps, outcomes ${JSON.stringify(outcomes)}`);
    }
    expect(treeListing(outside)).toEqual(before);
    expect(fs.readFileSync(secretPath, 'utf8')).toBe(SECRET);
  });

  it.skipIf(!hasProcFd)(
    'a parent directory swapped for a symlink to outside: never reads the secret, never writes outside',
    async () => {
      const tasks = path.join(loki.root, 'tasks');
      fs.mkdirSync(tasks);
      fs.writeFileSync(path.join(tasks, 'secret.txt'), 'inside');
      const before = treeListing(outside);
      const swapper = startSwapper(`
  quiet(() => fs.renameSync(${JSON.stringify(tasks)}, ${JSON.stringify(`${tasks}.real`)}));
  quiet(() => fs.symlinkSync(${JSON.stringify(outside)}, ${JSON.stringify(tasks)}));
  quiet(() => fs.unlinkSync(${JSON.stringify(tasks)}));
  quiet(() => {
    // If the code under test re-created "tasks" in the gap, bury that directory so the swap keeps going.
    if (fs.lstatSync(${JSON.stringify(tasks)}, { throwIfNoEntry: false })?.isDirectory()) fs.renameSync(${JSON.stringify(tasks)}, ${JSON.stringify(tasks)} + '.dead-' + swaps);
  });
  quiet(() => fs.renameSync(${JSON.stringify(`${tasks}.real`)}, ${JSON.stringify(tasks)}));`);
      await swapper.ready;
      const outcomes: Record<string, number> = {};
      const note = (k: string): void => {
        outcomes[k] = (outcomes[k] ?? 0) + 1;
      };
      const allowed = (err: unknown): string => {
        if (err instanceof PathError) return err.code;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return code;
        throw err;
      };
      try {
        const t0 = performance.now();
        // At least 1000 rounds and two seconds: the window between the checks and the open is a few microseconds.
        for (let i = 0; i < 50_000 && (i < 1000 || performance.now() - t0 < 2000); i++) {
          try {
            const got = readFileIfExists(loki, 'tasks/secret.txt');
            expect(got?.toString()).not.toBe(SECRET);
            note(`read:${got === undefined ? 'missing' : 'ok'}`);
          } catch (err) {
            note(`read:${allowed(err)}`);
          }
          try {
            writeFileAtomic(loki, 'tasks/secret.txt', `mine ${i}`, { durable: false });
            note('write:ok');
          } catch (err) {
            note(`write:${allowed(err)}`);
          }
          try {
            note(`create:${createExclusive(loki, `tasks/new-${i}.json`, 'mine', { durable: false })}`);
          } catch (err) {
            note(`create:${allowed(err)}`);
          }
        }
      } finally {
        const swaps = await swapper.stop();
        console.log(`parent-directory swap race: ${swaps} swaps, outcomes ${JSON.stringify(outcomes)}`);
      }
      expect(treeListing(outside)).toEqual(before);
    },
  );
});
