/**
 * Starting or resuming a run as loki_start does it, for every caller (the tool, and `loki run` for a person): the
 * start itself, the run-start checkpoint of a new run, then the empty phases passed. One function, so the two
 * cannot drift apart.
 */
import { autoCheckpoint } from '../checkpoints/create.js';
import type { Project } from '../project.js';
import { passIdlePhases } from './phase.js';
import type { SessionIdentity } from './sessions.js';
import { startRun, type StartArgs, type StartResult } from './start.js';
import { readRun } from './state.js';

export interface BeginResult extends StartResult {
  checkpoint: string | null;
  passed: string[];
  phaseNow: string;
}

export async function beginRun(
  project: Project,
  args: StartArgs,
  who: SessionIdentity,
  opts: { actor?: string } = {},
): Promise<BeginResult> {
  const r = await startRun(project, args, who, opts);
  const checkpoint = r.resumed ? null : await autoCheckpoint(project, 'run-start', `run ${r.run.runId} started`);
  const passed = await passIdlePhases(project);
  return { ...r, checkpoint, passed, phaseNow: readRun(project.existingStore())?.phase ?? r.run.phase };
}
