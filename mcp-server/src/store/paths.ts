/**
 * The one path validator. Every file the server or the CLI touches goes through here.
 *
 * Policy (docs/decisions/005-one-path-validator.md):
 * - Callers give a *relative* path (or an id that becomes one). Absolute paths, `..`, `.`, empty components,
 *   backslashes, colons, `~`, control and invisible characters, Windows reserved names and non-NFC text are
 *   refused before the file system is consulted.
 * - The base directory is canonicalised once (realpath). Each existing component under it is `lstat`ed:
 *   a symlink anywhere under the base, or anything that is not a regular file or a directory, is refused.
 * - Containment is checked with `path.relative`, never with a string prefix, so `.loki-evil` is outside `.loki`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PathError } from '../errors.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
export const MAX_COMPONENTS = 64;

// Windows ignores spaces between a device name and its extension: `nul .txt` is NUL too.
const WINDOWS_RESERVED =
  /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$) *(\..*)?$/i;
// Control, format (zero-width, BIDI overrides), line/paragraph separators, private use, unassigned, and lone
// surrogates (UTF-8 encoding turns every one into U+FFFD, so distinct strings would name the same file).
const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Co}\p{Cn}]/u;
// Characters that look like a dot, a slash or a backslash, or that a file system may translate into one.
const LOOKALIKES = /[\u2024\u2025\u2026\u2215\u2044\u29F8\u29F9\u2216\uFE52\uFE68\uFF0E\uFF0F\uFF3C\u3002\uFF61]/u;
const FORBIDDEN_ASCII = /[\\:*?"<>|~]/;

/** Paths already found valid, with their components: the server resolves the same few names again and again. */
const validPaths = new Map<string, readonly string[]>();
const MAX_REMEMBERED_PATHS = 4096;

/**
 * Lexical validation of a caller-supplied relative path. Returns its components (shared: do not change them).
 * It never touches the file system; its answers for valid paths are remembered (validPaths).
 */
export function splitRelativePath(input: unknown, what = 'path'): readonly string[] {
  if (typeof input === 'string') {
    const known = validPaths.get(input);
    if (known) return known;
  }
  if (typeof input !== 'string') {
    throw new PathError('PATH_TYPE', `${what} must be a string, got ${input === null ? 'null' : typeof input}`);
  }
  if (input.trim() === '') {
    throw new PathError('PATH_EMPTY', `${what} is empty: give a path relative to the project, e.g. "docs/spec.md"`);
  }
  if (Buffer.byteLength(input, 'utf8') > MAX_PATH_BYTES) {
    throw new PathError('PATH_TOO_LONG', `${what} is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (input.includes('\0')) {
    throw new PathError('PATH_CHARACTERS', `${what} contains a NUL byte`);
  }
  if (input.startsWith('/') || /^[a-zA-Z]:/.test(input) || input.startsWith('\\')) {
    throw new PathError(
      'PATH_ABSOLUTE',
      `${what} "${printable(input)}" is absolute: give it relative to the project root`,
    );
  }
  if (input.normalize('NFC') !== input) {
    throw new PathError(
      'PATH_CHARACTERS',
      `${what} is not in Unicode NFC form: rename the file or pass the NFC spelling`,
    );
  }
  const parts = Object.freeze(input.split('/'));
  if (parts.length > MAX_COMPONENTS) {
    throw new PathError('PATH_TOO_LONG', `${what} has more than ${MAX_COMPONENTS} components`);
  }
  for (const part of parts) checkComponent(part, input, what);
  if (validPaths.size >= MAX_REMEMBERED_PATHS) validPaths.clear();
  validPaths.set(input, parts);
  return parts;
}

function checkComponent(part: string, whole: string, what: string): void {
  // Only an error message shows the path (making it printable is not free).
  const shown = () => printable(whole);
  if (part === '') {
    throw new PathError('PATH_CHARACTERS', `${what} "${shown()}" has an empty component (a doubled or trailing "/")`);
  }
  if (part === '..') {
    throw new PathError(
      'PATH_TRAVERSAL',
      `${what} "${shown()}" contains "..": give a path inside the project without parent references`,
    );
  }
  if (part === '.') {
    throw new PathError('PATH_CHARACTERS', `${what} "${shown()}" contains a "." component: remove it`);
  }
  if (Buffer.byteLength(part, 'utf8') > MAX_COMPONENT_BYTES) {
    throw new PathError('PATH_TOO_LONG', `${what} has a component longer than ${MAX_COMPONENT_BYTES} bytes`);
  }
  if (INVISIBLE_OR_CONTROL.test(part) || LOOKALIKES.test(part) || FORBIDDEN_ASCII.test(part)) {
    throw new PathError(
      'PATH_CHARACTERS',
      `${what} "${shown()}" contains a character that is not allowed in a path here (control, invisible, look-alike, or one of \\ : * ? " < > | ~)`,
    );
  }
  if (part.startsWith('-')) {
    throw new PathError('PATH_CHARACTERS', `${what} "${shown()}" has a component starting with "-"`);
  }
  if (part.endsWith('.') || part.endsWith(' ') || part.startsWith(' ')) {
    throw new PathError(
      'PATH_CHARACTERS',
      `${what} "${shown()}" has a component with a leading space or a trailing dot or space`,
    );
  }
  if (WINDOWS_RESERVED.test(part)) {
    throw new PathError('PATH_RESERVED', `${what} "${shown()}" uses the reserved device name "${part}"`);
  }
}

/** A safe rendering of an untrusted string for an error message (no control characters, bounded). */
export function printable(s: string): string {
  const cleaned = s.replace(/[\p{Cc}\p{Cf}]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
  return cleaned.length > 120 ? `${cleaned.slice(0, 117)}...` : cleaned;
}

/** True when `child` is `parent` or below it. Both must be absolute and canonical. Separator-aware. */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  // Only a `..` *component* leaves the parent: a child named `..foo` (rel "..foo") is inside.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** A strict id usable as a file name: cannot contain a separator, cannot be `.`/`..`, cannot start with `-`. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function checkId(input: unknown, what = 'id'): string {
  if (typeof input !== 'string' || !ID_PATTERN.test(input) || input.includes('..') || WINDOWS_RESERVED.test(input)) {
    throw new PathError(
      'PATH_CHARACTERS',
      `${what} must match ${ID_PATTERN} (lowercase letters, digits, ".", "_", "-"; no "..")${typeof input === 'string' ? `, got "${printable(input)}"` : ''}`,
    );
  }
  return input;
}

export type LeafKind = 'file' | 'dir';

export interface ResolveOptions {
  /** What the final component must be when it exists. */
  leaf: LeafKind;
  /** Allow the final component not to exist yet (its parent must exist, or be created when `createParents`). */
  allowMissing?: boolean;
  /** Create missing intermediate directories (each one checked as it is made). */
  createParents?: boolean;
}

export interface ResolvedPath {
  /** Absolute path, built from the canonical base plus validated components. */
  absolute: string;
  /** The lstat of the final component, or undefined when it does not exist yet. */
  stat: fs.Stats | undefined;
}

/**
 * A directory whose canonical location is fixed once, and under which relative paths are resolved safely.
 */
export class SafeDir {
  readonly root: string;
  private readonly dev: number;

  private constructor(root: string, dev: number) {
    this.root = root;
    this.dev = dev;
  }

  /**
   * Open an existing directory as a base. The directory itself may be reached through symlinks (macOS `/tmp`),
   * so its realpath is taken once here.
   */
  static open(dir: string): SafeDir {
    const real = fs.realpathSync.native(dir);
    const st = fs.statSync(real);
    if (!st.isDirectory()) throw new PathError('PATH_NOT_DIRECTORY', `${dir} is not a directory`);
    return new SafeDir(real, st.dev);
  }

  /**
   * Open (creating when asked) a child directory of this base that must itself not be a symlink.
   * Used for `.loki/` under the project root.
   */
  child(name: string, create: boolean): SafeDir {
    const { absolute, stat } = this.resolve(name, { leaf: 'dir', allowMissing: create, createParents: create });
    if (!stat) mkdirChecked(absolute);
    return new SafeDir(absolute, fs.lstatSync(absolute).dev);
  }

  /** Resolve a relative path under this base after lexical and file-system checks. */
  resolve(rel: string, opts: ResolveOptions): ResolvedPath {
    const parts = splitRelativePath(rel);
    let current = this.root;
    let last: fs.Stats | undefined;
    for (let i = 0; i < parts.length; i++) {
      const isLast = i === parts.length - 1;
      const next = path.join(current, parts[i]!);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(next);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        st = undefined;
      }
      if (st === undefined) {
        if (isLast) {
          if (!opts.allowMissing) throw new PathError('PATH_MISSING', `"${printable(rel)}" does not exist`);
          return { absolute: this.contained(next, rel), stat: undefined };
        }
        if (!opts.createParents)
          throw new PathError('PATH_MISSING', `"${printable(rel)}" does not exist (missing directory "${parts[i]}")`);
        mkdirChecked(next);
        st = fs.lstatSync(next);
      }
      this.checkEntry(st, rel, isLast ? opts.leaf : 'dir');
      current = next;
      last = st;
    }
    return { absolute: this.contained(current, rel), stat: last };
  }

  private checkEntry(st: fs.Stats, rel: string, want: LeafKind): void {
    if (st.isSymbolicLink()) {
      throw new PathError('PATH_SYMLINK', `"${printable(rel)}" goes through a symbolic link, which is refused here`);
    }
    if (st.dev !== this.dev) {
      throw new PathError(
        'PATH_OTHER_DEVICE',
        `"${printable(rel)}" crosses onto another file system (a mount), which is refused`,
      );
    }
    if (want === 'dir' && !st.isDirectory()) {
      throw new PathError('PATH_NOT_DIRECTORY', `"${printable(rel)}": expected a directory, found ${describe(st)}`);
    }
    if (want === 'file' && !st.isFile()) {
      throw new PathError('PATH_NOT_FILE', `"${printable(rel)}": expected a regular file, found ${describe(st)}`);
    }
  }

  private contained(absolute: string, rel: string): string {
    if (!isWithin(this.root, absolute)) {
      throw new PathError('PATH_OUTSIDE', `"${printable(rel)}" resolves outside ${this.root}`);
    }
    return absolute;
  }

  /** The path of an already opened descriptor must still be inside this base (Linux: /proc/self/fd). */
  assertDescriptorInside(fd: number, rel: string): void {
    let real: string;
    try {
      real = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return; // Not Linux: the O_NOFOLLOW open plus the dev/ino check in fsx cover this.
    }
    if (!isWithin(this.root, real)) {
      throw new PathError(
        'PATH_OUTSIDE',
        `"${printable(rel)}" was swapped for a path outside ${this.root} while being opened`,
      );
    }
  }
}

function mkdirChecked(dir: string): void {
  try {
    // Private to the user: folders loki-mode makes hold its state, receipts and learnings.
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new PathError('PATH_NOT_DIRECTORY', `${dir} is not a directory`);
}

function describe(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'something else';
}

export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
