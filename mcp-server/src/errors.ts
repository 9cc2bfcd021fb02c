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
  | 'PATH_OTHER_DEVICE'
  | 'PATH_HARD_LINK';

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

/** The operating system's refusals that are about the disk, not about loki-mode: each has its own fix. */
export type DiskErrorCode = 'ENOSPC' | 'EDQUOT' | 'EROFS' | 'EACCES' | 'EPERM';

const DISK_FIXES: Record<DiskErrorCode, (where: string) => string> = {
  ENOSPC: (where) => `no space left on the disk holding ${where} (ENOSPC): free some space there, then try again`,
  EDQUOT: (where) =>
    `your disk quota is used up on ${where} (EDQUOT): free some space or have the quota raised, then try again`,
  EROFS: (where) =>
    `${where} is on a read-only file system (EROFS): remount it read-write, or work on a copy of the project on a writable disk`,
  EACCES: (where) =>
    `permission denied on ${where} (EACCES): make it writable by you (chmod u+rwX), or if another user owns it (ls -ld), chown it to yourself or run loki as that user`,
  EPERM: (where) =>
    `operation not permitted on ${where} (EPERM): check its ownership (ls -ld); chown it to yourself or run loki as its owner`,
};

/**
 * A full disk, a read-only file system or a missing permission, told as what it is: the path and the fix, one
 * line (store/disk.ts recognises them, including SQLite's vaguer words for the same causes).
 */
export class DiskError extends ExpectedError {
  constructor(
    readonly code: DiskErrorCode,
    readonly path: string,
    /** What could not be done, said first ("cannot use .loki/loki.db"). */
    context?: string,
  ) {
    super(`${context ? `${context}: ` : ''}${DISK_FIXES[code](path)}`);
  }
}

export function isExpectedError(err: unknown): err is ExpectedError {
  return err instanceof ExpectedError;
}
