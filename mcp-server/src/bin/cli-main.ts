import { runCli } from '../cli/main.js';
import { CliError } from '../cli/output.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`loki: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      const e = err as Error;
      process.stderr.write(`loki: ${e?.name === 'UsageError' || e?.name === 'PathError' || e?.name === 'ConfigError' ? e.message : (e?.stack ?? String(err))}\n`);
      process.exitCode = 1;
    }
  },
);
