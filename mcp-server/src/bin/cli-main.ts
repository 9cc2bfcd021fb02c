import { runCli } from '../cli/main.js';
import type { StartDashboard } from '../cli/dashboard.js';
import { forPeople, paint, tolerateClosedPipes } from '../cli/output.js';

import { CliError, isExpectedError } from '../errors.js';
import { asDiskError } from '../store/disk.js';

// `loki rollback list | head`: the reader leaving is not a crash (no EPIPE stack).
tolerateClosedPipes();

const say = (message: string) => process.stderr.write(`${paint('red', 'loki:', process.stderr)} ${message}\n`);

// The dashboard (its HTTP framework) is loaded only by `loki dashboard`: no other command pays for it.
const startDashboard: StartDashboard = (o) => import('../dashboard/serve.js').then((m) => m.startDashboard(o));

runCli(process.argv.slice(2), { startDashboard }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      say(forPeople(err.message));
      process.exitCode = err.exitCode;
    } else {
      // An expected error says what to do, in the services' words for the agent: said here with the CLI's commands.
      // Anything else is a bug, reported with its stack.
      const known = isExpectedError(err) ? err : asDiskError(err);
      say(known ? forPeople(known.message) : ((err as Error)?.stack ?? String(err)));
      process.exitCode = 1;
    }
  },
);
