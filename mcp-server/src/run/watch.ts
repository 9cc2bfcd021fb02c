/**
 * What `loki status --watch` polls: a stamp that changes whenever the run may look different. Every change a
 * process makes to the run is one audited transaction, so the audit log's newest seq moves with each; the signal
 * files a person may also write by hand (PAUSE, STOP, HUMAN_INPUT.md) are looked at too. One indexed read and
 * three stats: cheap enough to ask every second, so the view is rebuilt only when something happened.
 */
import type { Project } from '../project.js';
import { HUMAN_INPUT, readMarkers } from './signals.js';

export function changeStamp(project: Project): string {
  const store = project.existingStore();
  if (!store) return 'none';
  const m = readMarkers(store);
  return `${store.audit.head()}|${m.pause ? 'P' : ''}${m.stop ? 'S' : ''}${store.exists(HUMAN_INPUT) ? 'H' : ''}`;
}
