/**
 * Who a person is when they steer the run from the `loki` CLI or the dashboard: the OS user and the process,
 * written into the audit entry's actor (`person:<user> via cli:<pid>`, `person:<user> via dashboard:<pid>`) so the
 * log tells a person's action from an agent's. The steering services refuse any other process: a server process
 * calling them would record an agent's action as a person's. (As trust/waivers.ts says, the server cannot tell a
 * person at a terminal, or at the dashboard with its token, from the agent's shell; the log records what ran, and
 * the receipt says as much.)
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

/** The processes a person steers from: the `loki` CLI and the dashboard it serves. */
const PERSON_SURFACES = ['cli:', 'dashboard:'] as const;

export function isPersonSurface(actor: string): boolean {
  return PERSON_SURFACES.some((p) => actor.startsWith(p));
}

/** How a receipt names where a person acted: the CLI command, or the dashboard. */
export function viaSurface(actor: string, cliCommand: string): string {
  return `${actor.startsWith('dashboard:') ? 'the dashboard' : cliCommand} (${actor})`;
}

export function personAt(project: Project, doing: string): Person {
  if (!isPersonSurface(project.actor))
    throw new UsageError(
      `only a person at the loki command line or dashboard can ${doing}: run \`loki\` in a terminal`,
    );
  let user: string | null = null;
  try {
    user = os.userInfo().username || null;
  } catch {
    user = null;
  }
  return { user, actor: `person:${user ?? 'unknown'} via ${project.actor}` };
}
