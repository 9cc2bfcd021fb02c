import { runCli } from '../cli/main.js';

import { CliError, isExpectedError } from '../errors.js';
import { asDiskError } from '../store/disk.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`loki: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      const known = isExpectedError(err) ? err : asDiskError(err);
      process.stderr.write(`loki: ${known ? known.message : ((err as Error)?.stack ?? String(err))}\n`);
      process.exitCode = 1;
    }
  },
);
