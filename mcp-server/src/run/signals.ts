/**
 * The people-facing signals: `.loki/PAUSE`, `.loki/STOP` and `.loki/HUMAN_INPUT.md`.
 * HUMAN_INPUT is delivered only with LOKI_PROMPT_INJECTION=true, is size-capped, is never read through a symbolic
 * link nor when it has a second name (a hard link: whoever can write that name, perhaps outside the project,
 * writes it), and is moved to `.loki/logs/` once delivered (or rejected), so it reaches the agent exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createExclusive, moveFile, readFileIfExists, removeFile, writeFileAtomic } from '../store/fsx.js';

import type { Store } from '../store/store.js';
import { FileTooLargeError, PathError } from '../errors.js';

export const PAUSE = 'PAUSE';
export const STOP = 'STOP';
export const HUMAN_INPUT = 'HUMAN_INPUT.md';
export const HUMAN_INPUT_IGNORED =
  '.loki/HUMAN_INPUT.md is present but ignored: set LOKI_PROMPT_INJECTION=true to deliver it';

export type HumanInput =
  | { status: 'none' }
  | { status: 'ignored'; reason: string }
  | { status: 'delivered'; text: string; archivedAs: string }
  | { status: 'rejected'; reason: string; archivedAs: string | null };

export interface Signals {
  pause: boolean;
  stop: boolean;
  humanInput: HumanInput;
}

/** PAUSE and STOP, read-only. Any entry with the name counts (a marker is never ignored). */
export function readMarkers(store: Store | undefined): { pause: boolean; stop: boolean } {
  if (!store) return { pause: false, stop: false };
  return { pause: store.exists(PAUSE), stop: store.exists(STOP) };
}

/**
 * Take HUMAN_INPUT.md if delivery is enabled; otherwise say that it is waiting. Call inside the transaction that
 * records the delivery.
 */
export function takeHumanInput(store: Store, enabled: boolean, maxBytes: number, now = new Date()): HumanInput {
  if (!store.exists(HUMAN_INPUT)) return { status: 'none' };
  if (!enabled) {
    return { status: 'ignored', reason: HUMAN_INPUT_IGNORED };
  }
  const stamp = now.toISOString().replace(/[:.]/g, '-').toLowerCase();
  let text: string;
  try {
    const buf = readFileIfExists(store.loki, HUMAN_INPUT, maxBytes, { singleLink: true });
    if (!buf) return { status: 'none' };
    text = buf.toString('utf8');
    if (text.includes('\uFFFD') || text.includes('\0')) throw new Error('it is not UTF-8 text');
  } catch (err) {
    const reason =
      err instanceof PathError && err.code === 'PATH_SYMLINK'
        ? 'HUMAN_INPUT.md is a symbolic link, which is never followed; write a regular file instead'
        : err instanceof PathError && err.code === 'PATH_HARD_LINK'
          ? 'HUMAN_INPUT.md has more than one hard link (the same file under another name, perhaps outside the project), which is never trusted; write a file of its own (cp, not ln)'
          : err instanceof FileTooLargeError
            ? `HUMAN_INPUT.md is larger than ${maxBytes} bytes; shorten it`
            : `HUMAN_INPUT.md was refused: ${(err as Error).message}`;
    return { status: 'rejected', reason, archivedAs: archiveRejected(store, stamp) };
  }
  const archivedAs = `logs/human-input-${stamp}.md`;
  moveFile(store.loki, HUMAN_INPUT, archivedAs);
  return { status: 'delivered', text, archivedAs };
}

/** Move a rejected HUMAN_INPUT.md (a link is moved as a link, never followed) out of the way. */
function archiveRejected(store: Store, stamp: string): string | null {
  const target = `logs/human-input-rejected-${stamp}`;
  try {
    const { absolute } = store.loki.resolve(target, { leaf: 'file', allowMissing: true, createParents: true });
    fs.renameSync(path.join(store.loki.root, HUMAN_INPUT), absolute);
    return target;
  } catch {
    return null;
  }
}

export function writeMarker(store: Store, name: typeof PAUSE | typeof STOP, note: string): boolean {
  return createExclusive(store.loki, name, `${note}\n`, { mode: 0o600 });
}

export function clearMarker(store: Store, name: typeof PAUSE | typeof STOP): boolean {
  return removeFile(store.loki, name);
}

/**
 * Add a person's directive to HUMAN_INPUT.md (`loki say`), after any directive not yet delivered, so two said
 * before the agent's next turn both reach it; returns the file's size. Refused as takeHumanInput would refuse it:
 * a file that is a link is never written through, and the whole file stays under `maxBytes`. Call inside the
 * transaction that records it.
 */
export function appendHumanInput(store: Store, text: string, maxBytes: number): number {
  const waiting = readFileIfExists(store.loki, HUMAN_INPUT, maxBytes, { singleLink: true });
  const body = `${waiting ? `${waiting.toString('utf8').replace(/\n*$/, '\n\n')}` : ''}${text.trim()}\n`;
  const bytes = Buffer.byteLength(body);
  if (bytes > maxBytes)
    throw new FileTooLargeError(
      `the directive would make HUMAN_INPUT.md ${bytes} bytes, over the ${maxBytes} delivered (signals.humanInputMaxBytes); say it more briefly${waiting ? ' or wait for the one waiting to be delivered' : ''}`,
    );
  writeFileAtomic(store.loki, HUMAN_INPUT, body, { mode: 0o600 });
  return bytes;
}
