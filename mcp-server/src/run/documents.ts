/**
 * Every kind of document the `docs` table holds, with its schema: what `loki doctor` checks each stored
 * document against. A new document kind is added here, or doctor reports its rows as unknown.
 */
import { GATE_RECORD, JOURNAL_RECORD } from '../checkpoints/records.js';
import type { RecordType } from '../store/records.js';
import { CHECKLIST_RECORD, COUNCIL_RECORD, TRUST_RECORD, WAIVER_RECORD } from '../trust/records.js';
import { BASELINE_TESTS_RECORD, VERIFICATION_RECORD } from '../verify/record.js';
import { HOOK_STATE_RECORD } from './hook-state.js';
import { RUN_RECORD, SESSION_RECORD } from './records.js';

export const DOCUMENT_TYPES: readonly RecordType<unknown>[] = [
  RUN_RECORD,
  SESSION_RECORD,
  HOOK_STATE_RECORD,
  TRUST_RECORD,
  CHECKLIST_RECORD,
  COUNCIL_RECORD,
  WAIVER_RECORD,
  VERIFICATION_RECORD,
  BASELINE_TESTS_RECORD,
  JOURNAL_RECORD,
  GATE_RECORD,
];
