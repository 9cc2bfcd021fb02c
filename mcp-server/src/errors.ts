/**
 * Errors whose message already tells the caller what to do (bad path, bad config, a refusal, a busy lock).
 * They are shown as they are; anything else is a bug and is reported with its stack.
 */
const EXPECTED_ERRORS = new Set(['PathError', 'ConfigError', 'LockTimeoutError', 'UsageError', 'NewerSchemaError', 'FileTooLargeError', 'ProjectRootError', 'SpecError', 'TaskRuleError', 'ChecklistError']);

export function isExpectedError(err: unknown): err is Error {
  return err instanceof Error && EXPECTED_ERRORS.has(err.name);
}
