/** The draft a spec reader gives for each requirement, before ids are given in document order. */
import type { TaskDraft } from '../tasks.js';

export interface Draft extends TaskDraft {
  /** A criteria task: depends on every task of its section (resolved when the drafts are numbered). */
  dependsOnSection?: boolean;
  /** The id the spec itself gives this requirement ("REQ-3", a JSON element's `id`). */
  ref?: string;
  /** The spec's ids of the requirements this one depends on (resolved to task ids when numbered). */
  after?: string[];
}
