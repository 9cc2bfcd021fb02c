/**
 * What a run does, as events (run/progress.ts reads them from the audit log): the one definition for `loki run
 * --json`, the dashboard's event stream and its page (mcp-server/ui/ imports this type). No imports, so a browser
 * build can take it.
 */
export type ProgressEvent =
  | { type: 'phase'; from: string; to: string; auto: boolean }
  | { type: 'task-claimed'; id: string; title: string | null; attempt: number | null }
  | { type: 'task-completed'; id: string; title: string | null }
  | { type: 'task-failed'; id: string; title: string | null; error: string | null; deadLetter: boolean }
  | { type: 'verify'; id: string; verdicts: Record<string, string>; blocking: number; filesChanged: number | null }
  | { type: 'checklist'; passed: number; failed: number }
  | { type: 'council-convened'; council: string; size: number | null }
  | { type: 'council-vote'; council: string; seat: number | null; state: string }
  | { type: 'council-outcome'; council: string; state: string; approvals: number | null; reasons: string[] }
  | { type: 'completion-refused'; reason: string | null }
  | { type: 'complete'; headline: string | null; receipt: string | null }
  | { type: 'run-stopped'; reason: string | null }
  | { type: 'signal'; signal: string; by: string }
  | { type: 'directive'; status: string }
  | { type: 'budget-exceeded'; spentUsd: number | null; limitUsd: number | null }
  | { type: 'usage'; costUsd: number; contextTokens: number };
