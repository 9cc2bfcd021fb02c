/**
 * `loki-mcp`: the stdio MCP server. Resolves the project root, answers `initialize` without touching .loki/,
 * and when stdin closes, a stream fails or a signal comes, logs why, marks its session stopped, closes the
 * database and exits (stdio.ts: a line it cannot take is answered, never a reason to stop listening).
 */
import { parseArgs } from 'node:util';
import { ProjectRootError } from '../errors.js';
import { Project, resolveProjectRoot } from '../project.js';
import { createServer } from '../server.js';
import { LineTransport } from '../stdio.js';
import { log, routeWarnings } from '../log.js';
import { VERSION } from '../version.js';

const USAGE = `loki-mcp ${VERSION}: the Loki Mode MCP server (stdio)

Usage: loki-mcp [--project-dir DIR]

  --project-dir DIR   the project to work on (default: $LOKI_PROJECT_DIR, $CLAUDE_PROJECT_DIR, then the
                      working directory). Hosts that start servers in / (Cline) need this or LOKI_PROJECT_DIR.
  -h, --help          show this help
  -v, --version       print the version

Register it: loki install claude|codex|cline (npx -y -p loki-mode loki install ...), or by hand:
  claude mcp add loki -- npx -y -p loki-mode loki-mcp   |   codex mcp add loki -- npx -y -p loki-mode loki-mcp
`;

function main(): void {
  let values: { 'project-dir'?: string; help?: boolean; version?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        'project-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`loki-mcp: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    process.stderr.write(USAGE);
    return;
  }
  if (values.version) {
    process.stderr.write(`${VERSION}\n`);
    return;
  }
  routeWarnings();
  let root: string;
  try {
    root = resolveProjectRoot(values['project-dir'], process.env, process.cwd()).root;
  } catch (err) {
    if (err instanceof ProjectRootError) {
      log.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const project = new Project({ root, actor: `mcp:${process.pid}` });
  const loki = createServer(project);
  // eslint-disable-next-line no-restricted-properties -- the transport is the one writer of the protocol on stdout
  const transport = new LineTransport(process.stdin, process.stdout);

  let exiting = false;
  const exit = (reason: string, code = 0) => {
    if (exiting) return;
    exiting = true;
    // A client going away is the normal end; anything else is said where the host shows the server's log.
    if (code === 0) log.info(`exiting: ${reason}`);
    else log.error(`exiting: ${reason}`);
    try {
      loki.shutdown(reason);
    } catch (err) {
      log.error('could not record the session as stopped:', err);
      code = code || 1;
    }
    void loki.server.close().finally(() => process.exit(code));
    setTimeout(() => process.exit(code), 1000).unref();
  };
  // The transport closes when stdin ends or either stream fails, and says why: the process never outlives it.
  loki.server.server.onclose = () =>
    exit(transport.closed?.reason ?? 'the connection closed', transport.closed?.code ?? 0);
  loki.server.server.onerror = (err) => log.warn(`protocol: ${err.message}`);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => exit(`received ${signal}`));
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception:', err);
    exit('crashed', 1);
  });

  loki.server.connect(transport).then(
    () => log.info(`serving ${root}`),
    (err) => {
      log.error('could not start:', err);
      process.exit(1);
    },
  );
}

main();
