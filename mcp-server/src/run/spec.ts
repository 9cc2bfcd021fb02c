/**
 * Spec intake for loki_start: a file inside the project (through the path validator, never inside .loki/ or
 * .git/) or inline text; size-capped, UTF-8 text only (empty, binary or word-less input is refused with the
 * reason, before anything is written), hashed, with a title for the briefing.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { scrubText } from '../domain/secrets.js';
import { titleOfSpec } from '../domain/spec-tasks.js';
import { FileTooLargeError, PathError, UsageError } from '../errors.js';
import { readFileIfExists } from '../store/fsx.js';
import { printable, splitRelativePath, type SafeDir } from '../store/paths.js';

export const MAX_SPEC_BYTES = 1024 * 1024;

export interface SpecInput {
  source: 'file' | 'text';
  path: string | null;
  text: string;
  sha256: string;
  bytes: number;
  title: string | null;
  extension: string;
}

/** Read a spec file under the project (`project` is the project root, validated). */
export function readSpecFile(project: SafeDir, rel: string): SpecInput {
  const parts = splitRelativePath(rel, 'spec');
  if (parts[0]!.toLowerCase() === '.loki' || parts[0]!.toLowerCase() === '.git') {
    throw new PathError(
      'PATH_OUTSIDE',
      `spec "${printable(rel)}" is inside ${parts[0]}/, which holds state, not specs: give the spec's own path`,
    );
  }
  let buf: Buffer | undefined;
  try {
    buf = readFileIfExists(project, rel, MAX_SPEC_BYTES);
  } catch (err) {
    if (err instanceof FileTooLargeError) {
      throw new UsageError(
        `spec "${printable(rel)}" is larger than ${MAX_SPEC_BYTES} bytes; point at the main document or pass a summary as specText`,
      );
    }
    throw err;
  }
  if (!buf)
    throw new UsageError(
      `spec "${printable(rel)}" does not exist under the project root ${project.root}; give a path relative to it`,
    );
  const text = buf.toString('utf8');
  const problem = textProblem(text);
  if (problem) throw new UsageError(`spec "${printable(rel)}" ${problem}`);
  const ext = path.extname(rel).toLowerCase();
  // The file is hashed as it is (a person can compare it); its copy under .loki/, and the tasks, checklist and
  // title taken from it, hold it with secrets scrubbed.
  const clean = scrubText(text).text;
  const extension = ['.md', '.markdown', '.json', '.yaml', '.yml', '.txt'].includes(ext) ? ext : '.txt';
  return {
    source: 'file',
    path: rel,
    text: clean,
    sha256: sha256(text),
    bytes: buf.length,
    title: specTitle(clean, extension),
    extension,
  };
}

export function specFromText(text: string): SpecInput {
  if (text.trim() === '') throw new UsageError('`specText` is empty: give the brief itself, or `spec` with a path');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES)
    throw new UsageError(`\`specText\` is larger than ${MAX_SPEC_BYTES} bytes; write it to a file and pass \`spec\``);
  const problem = textProblem(text);
  if (problem) throw new UsageError(`\`specText\` ${problem}`);
  const trimmed = text.trimStart();
  const extension = /^[[{]/.test(trimmed) ? '.json' : /^(openapi|swagger)\s*:/m.test(trimmed) ? '.yaml' : '.md';
  return {
    source: 'text',
    path: null,
    text,
    sha256: sha256(text),
    bytes,
    title: specTitle(text, extension),
    extension,
  };
}

/**
 * Why a spec's text cannot be read as a spec, or null: empty, not UTF-8, binary (NUL bytes or many control
 * characters: an image, an archive, a PDF), or without a single word.
 */
export function textProblem(text: string): string | null {
  if (text.trim() === '') return 'is empty: write the requirements in it';
  if (text.includes('\0')) return 'is a binary file, not text: give a Markdown, JSON, YAML or plain-text spec';
  if (text.includes('\uFFFD')) return 'is not UTF-8 text: save it as UTF-8';
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // C0 controls other than tab, line feed, vertical tab, form feed and carriage return; and DEL.
    if ((c < 0x20 && (c < 0x09 || c > 0x0d)) || c === 0x7f) control++;
  }
  if (control > 8 && control > text.length / 100)
    return 'looks like a binary file (it is full of control characters): give a Markdown, JSON, YAML or plain-text spec';
  if (!/[\p{L}\p{N}]/u.test(text)) return 'has no words in it: write the requirements in it';
  return null;
}

/** The run's title: what the spec calls itself (an OpenAPI `info.title`, a PRD `title`, the first heading). */
export function specTitle(text: string, extension = '.md'): string | null {
  const own = titleOfSpec(text, extension);
  if (own) return own.slice(0, 200);
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
  // A structured spec without a title is not named by its first line ("{", "openapi: 3.0.0").
  if (!first || /^\s*[[{]|^\s*(openapi|swagger)\s*:/.test(first)) return null;
  return (
    first
      .replace(/^\s*#+\s*/, '')
      .trim()
      .slice(0, 200) || null
  );
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
