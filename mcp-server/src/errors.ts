/**
 * Every error whose message already tells the caller what to do: a bad path, a bad setting, a refusal, a store
 * that cannot be used as it is. They are shown as they are (tools: an isError result; the CLI: one line).
 * Anything else is a bug and is reported with its stack. Recognised by type (ExpectedError), never by name.
 */
export abstract class ExpectedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A user-facing refusal of an operation in the current state; the message says what to do instead. */
export class UsageError extends ExpectedError {}

/** A refusal of a queue operation (task rules); the message says what to do instead. */
export class TaskRuleError extends ExpectedError {}

/** A spec that cannot be turned into a run. */
export class SpecError extends ExpectedError {}

/** A checklist change that breaks its rules. */
export class ChecklistError extends ExpectedError {}

/** An invalid configuration: each problem names the setting and its fix. */
export class ConfigError extends ExpectedError {
  constructor(readonly problems: string[]) {
    super(`configuration problem${problems.length > 1 ? 's' : ''}: ${problems.join('; ')}`);
  }
}

/** The project root cannot be used. */
export class ProjectRootError extends ExpectedError {}

/** `loki install` cannot write the host's configuration. */
export class InstallError extends ExpectedError {}

/** A human CLI usage problem, with the exit code to end with. */
export class CliError extends ExpectedError {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export type PathErrorCode =
  | 'PATH_TYPE'
  | 'PATH_EMPTY'
  | 'PATH_TOO_LONG'
  | 'PATH_ABSOLUTE'
  | 'PATH_TRAVERSAL'
  | 'PATH_CHARACTERS'
  | 'PATH_RESERVED'
  | 'PATH_OUTSIDE'
  | 'PATH_SYMLINK'
  | 'PATH_NOT_FILE'
  | 'PATH_NOT_DIRECTORY'
  | 'PATH_MISSING'
  | 'PATH_OTHER_DEVICE';

/** A path refused by the one path validator (store/paths.ts). */
export class PathError extends ExpectedError {
  constructor(
    readonly code: PathErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A file larger than the reader accepts. */
export class FileTooLargeError extends ExpectedError {}

/** The database (or something else the store keeps) cannot be used as it is; the message names the fix. */
export class StoreError extends ExpectedError {}

/** The database was written by a newer loki-mode: refused as it is, never rewritten. */
export class NewerSchemaError extends StoreError {
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `.loki/loki.db was written by a newer loki-mode (schema ${found}; this one knows up to ${supported}): ` +
        'upgrade loki-mode (npm install -g loki-mode@latest, or update the plugin) and try again; the database was left as it is',
    );
  }
}

/** A record in the database does not match its schema (edited by hand, or damaged). */
export class DamagedRecordError extends StoreError {}

export function isExpectedError(err: unknown): err is ExpectedError {
  return err instanceof ExpectedError;
}
