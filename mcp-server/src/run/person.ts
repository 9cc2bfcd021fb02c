/**
 * Who a person is when they steer the run from the `loki` CLI: the OS user and the CLI process, written into the
 * audit entry's actor (`person:<user> via cli:<pid>`) so the log tells a person's action from an agent's. The
 * steering services refuse any other process: a server process calling them would record an agent's action as a
 * person's. (As trust/waivers.ts says, the server cannot tell a person at a terminal from the agent's shell; the
 * log records what ran, and the receipt says as much.)
 */
import os from 'node:os';
import type { Project } from '../project.js';
import { UsageError } from '../errors.js';

export interface Person {
  /** The OS user, when it can be read. */
  user: string | null;
  /** The audit actor: `person:<user> via cli:<pid>`. */
  actor: string;
}

export function personAt(project: Project, doing: string): Person {
  if (!project.actor.startsWith('cli:'))
    throw new UsageError(`only a person at the loki command line can ${doing}: run \`loki\` in a terminal`);
  let user: string | null = null;
  try {
    user = os.userInfo().username || null;
  } catch {
    user = null;
  }
  return { user, actor: `person:${user ?? 'unknown'} via ${project.actor}` };
}
