/**
 * Spec intake for loki_start: a file inside the project (through the path validator, never inside .loki/ or
 * .git/) or inline text; size-capped, UTF-8 only, hashed, with a title for the briefing.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { scrubText } from '../domain/secrets.js';
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
  if (text.includes('\uFFFD') || text.includes('\0'))
    throw new UsageError(`spec "${printable(rel)}" is not UTF-8 text`);
  if (text.trim() === '') throw new UsageError(`spec "${printable(rel)}" is empty`);
  const ext = path.extname(rel).toLowerCase();
  // The file is hashed as it is (a person can compare it); its copy under .loki/, and the tasks, checklist and
  // title taken from it, hold it with secrets scrubbed.
  const clean = scrubText(text).text;
  return {
    source: 'file',
    path: rel,
    text: clean,
    sha256: sha256(text),
    bytes: buf.length,
    title: specTitle(clean),
    extension: ['.md', '.markdown', '.json', '.yaml', '.yml', '.txt'].includes(ext) ? ext : '.txt',
  };
}

export function specFromText(text: string): SpecInput {
  if (text.trim() === '') throw new UsageError('`specText` is empty: give the brief itself, or `spec` with a path');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES)
    throw new UsageError(`\`specText\` is larger than ${MAX_SPEC_BYTES} bytes; write it to a file and pass \`spec\``);
  const trimmed = text.trimStart();
  const extension = trimmed.startsWith('{') ? '.json' : /^(openapi|swagger)\s*:/m.test(trimmed) ? '.yaml' : '.md';
  return { source: 'text', path: null, text, sha256: sha256(text), bytes, title: specTitle(text), extension };
}

export function specTitle(text: string): string | null {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const doc = JSON.parse(trimmed) as { title?: unknown; name?: unknown; info?: { title?: unknown } };
      const t = doc.info?.title ?? doc.title ?? doc.name;
      if (typeof t === 'string' && t.trim() !== '') return t.trim().slice(0, 200);
    } catch {
      /* not JSON after all */
    }
  }
  const yamlTitle = /^\s{2}title:\s*["']?(.+?)["']?\s*$/m.exec(text);
  if (/^(openapi|swagger)\s*:/m.test(text) && yamlTitle) return yamlTitle[1]!.slice(0, 200);
  const heading = /^#{1,6}\s+(.+)$/m.exec(text);
  if (heading) return heading[1]!.trim().slice(0, 200);
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
  return first ? first.trim().slice(0, 200) : null;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}
