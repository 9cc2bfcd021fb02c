/** The run record and the refusal the run operations raise. */
import { UsageError } from '../errors.js';
import type { Project } from '../project.js';
import type { Store } from '../store/store.js';
import { RUN_FILE, RUN_RECORD, type RunState } from './records.js';

export function readRun(store: Store | undefined): RunState | undefined {
  return store?.records.read(RUN_FILE, RUN_RECORD);
}

/** The run for read-only use on hot paths (every claim): not re-read or re-validated while the file is unchanged. */
export function peekRun(store: Store | undefined): Readonly<RunState> | undefined {
  return store?.records.read(RUN_FILE, RUN_RECORD);
}

/** The run, refused with what to do when there is none or it is not active. `what` names the operation. */
export function activeRun(project: Project, what: string): RunState {
  return requireActive(readRun(project.existingStore()), what);
}

/** activeRun for read-only use on hot paths (see peekRun). */
export function activeRunPeek(project: Project, what: string): Readonly<RunState> {
  return requireActive(peekRun(project.existingStore()), what);
}

function requireActive<T extends Readonly<RunState>>(run: T | undefined, what: string): T {
  if (!run) throw new UsageError(`no run yet: call loki_start before ${what}`);
  if (run.status !== 'active')
    throw new UsageError(
      `the run is ${run.status}${run.stopReason ? ` (${run.stopReason})` : ''}; ${what} needs an active run (loki_start resumes a stopped one)`,
    );
  return run;
}

/** The run came back to its phase (a step back with a reason): it stays there until the agent moves on. */
export function enteredBack(run: RunState): boolean {
  const last = run.phaseHistory.at(-1);
  return last !== undefined && last.direction === 'back' && last.to === run.phase;
}
