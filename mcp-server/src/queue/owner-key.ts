/**
 * The project's queue owner key: `.loki/locks/queue-owner.key`, 64 hex characters, mode 0600, created once by
 * whichever process first needs it (write-once: readers see no file or the whole key). Every request to the
 * queue owner carries it (protocol.ts), so only processes that can read this project's `.loki/` can use the
 * owner's socket. It lives with the locks: never part of a checkpoint, so a rollback cannot change it under a
 * running owner.
 */
import { createFileOnce, readFileIfExists } from '../store/fsx.js';
import type { Store } from '../store/store.js';
import { isOwnerKey, newOwnerKey } from './protocol.js';

export const OWNER_KEY_FILE = 'queue-owner.key';

/** Read the key, creating it first if there is none. Throws (with the fix) when the file is not a key. */
export function ownerKey(store: Store): string {
  createFileOnce(store.lockDir, OWNER_KEY_FILE, newOwnerKey(), 0o600);
  const text = readFileIfExists(store.lockDir, OWNER_KEY_FILE, 1024)?.toString('utf8').trim() ?? '';
  if (!isOwnerKey(text)) {
    throw new Error(`.loki/locks/${OWNER_KEY_FILE} is not a queue owner key; delete it (a new one is made) and restart the loki processes of this project`);
  }
  return text;
}
