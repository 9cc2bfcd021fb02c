/**
 * RecordIO.readCached (the run as every claim reads it): the cached value is frozen, is returned while the file is
 * unchanged, is replaced as soon as the file is rewritten, and disappears with the file; a broken file is still
 * quarantined.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as z from 'zod/mini';
import { afterEach, describe, expect, it } from 'vitest';
import { SafeDir } from '../mcp-server/src/store/paths.js';
import { RecordIO, encodeRecord, type RecordType } from '../mcp-server/src/store/records.js';

const NOTE: RecordType<{ text: string; tags: string[] }> = {
  kind: 'note',
  version: 1,
  schema: z.strictObject({ text: z.string(), tags: z.array(z.string()) }),
};

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function setup(): { io: RecordIO; file: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-records-'));
  roots.push(root);
  return { io: new RecordIO(SafeDir.open(root)), file: path.join(root, 'note.json') };
}

describe('RecordIO.readCached', () => {
  it('returns the same frozen value while the file is unchanged, and the new one after every write', () => {
    const { io, file } = setup();
    expect(io.readCached('note.json', NOTE)).toBeUndefined();
    io.write('note.json', NOTE, { text: 'one', tags: ['a'] });
    const first = io.readCached('note.json', NOTE)!;
    expect(first).toEqual({ text: 'one', tags: ['a'] });
    expect(Object.isFrozen(first) && Object.isFrozen(first.tags)).toBe(true);
    expect(() => (first.tags as string[]).push('b')).toThrow(TypeError);
    expect(io.readCached('note.json', NOTE)).toBe(first);
    // Rewritten many times in a row (same size, within one timestamp tick): every version is seen.
    for (let i = 0; i < 50; i++) {
      io.write('note.json', NOTE, { text: `v${i % 10}`, tags: ['a'] });
      expect(io.readCached('note.json', NOTE)!.text).toBe(`v${i % 10}`);
    }
    fs.rmSync(file);
    expect(io.readCached('note.json', NOTE)).toBeUndefined();
  });

  it('a broken file is quarantined, not cached', () => {
    const { io, file } = setup();
    fs.writeFileSync(file, encodeRecord(NOTE, { text: 'ok', tags: [] }).replace('"ok"', '42'));
    expect(io.readCached('note.json', NOTE)).toBeUndefined();
    expect(io.quarantined.map((q) => q.file)).toEqual(['note.json']);
    expect(fs.existsSync(file)).toBe(false);
  });
});
