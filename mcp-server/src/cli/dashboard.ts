/**
 * `loki dashboard [--port N] [--host H]`: serve the dashboard until Ctrl-C. The server itself is the dashboard
 * surface's (dashboard/serve.ts), handed in by the composition root (bin/cli-main.ts): surfaces do not import one
 * another. This prints where to open it, with the token in the address's fragment (a browser never sends it).
 */
import { Project } from '../project.js';
import { CliError } from '../errors.js';
import { paint, print } from './output.js';

export interface StartedDashboard {
  url: string;
  openUrl: string;
  tokens: { read: string; source: string; file: string };
  tls: boolean;
  close(): Promise<void>;
}

export type StartDashboard = (o: {
  project: Project;
  env: NodeJS.ProcessEnv;
  port?: number;
  host?: string;
  warn: (message: string) => void;
}) => Promise<StartedDashboard>;

export const DASHBOARD_USAGE = 'usage: loki dashboard [--port N] [--host ADDRESS]';

export async function dashboardCommand(
  cliProject: Project,
  opts: { port: string | undefined; host: string | undefined },
  start: StartDashboard | undefined,
): Promise<number> {
  if (!start) throw new CliError('this build of loki has no dashboard', 1);
  let port: number | undefined;
  if (opts.port !== undefined) {
    if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535)
      throw new CliError(`--port: "${opts.port}" is not a TCP port (0-65535)`, 2);
    port = Number(opts.port);
  }
  // The dashboard's own actor: a person's actions from it are recorded as `person:<user> via dashboard:<pid>`.
  const project = new Project({ root: cliProject.root, env: cliProject.env, actor: `dashboard:${process.pid}` });
  const d = await start({
    project,
    env: process.env,
    ...(port !== undefined ? { port } : {}),
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    warn: (m) => process.stderr.write(`${paint('yellow', 'loki dashboard:', process.stderr)} ${m}\n`),
  });
  print(
    [
      `Dashboard of ${project.root}`,
      `Open      ${d.openUrl}`,
      `Read-only token ${d.tokens.read} (share it to let someone watch without steering)`,
      `Tokens    ${d.tokens.source === 'environment' ? 'from LOKI_DASHBOARD_TOKEN' : d.tokens.file}`,
      paint('dim', 'Ctrl-C stops the dashboard; the run goes on.'),
    ].join('\n'),
  );
  return new Promise<number>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void d.close().then(() => resolve(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
