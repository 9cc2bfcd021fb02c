/** The run record and the refusal the run operations raise. */
import type { Store } from '../store/store.js';
import { RUN_FILE, RUN_RECORD, type RunState } from './records.js';

/** A user-facing refusal: the message says what to do instead. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function readRun(store: Store | undefined): RunState | undefined {
  return store?.records.read(RUN_FILE, RUN_RECORD);
}
