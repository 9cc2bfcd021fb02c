/** Types for hosts.mjs (plain JavaScript, so bench/agent-path.mjs runs it with node alone). */
export type Host = 'claude' | 'codex' | 'cline';

export interface Item {
  kind: 'user' | 'assistant' | 'call' | 'result';
  text?: string;
  id?: string;
  name?: string;
  args?: Record<string, unknown>;
  isError?: boolean;
  raw?: unknown;
}

export interface Defect {
  kind: string;
  tool: string;
  text?: string;
  next?: string;
  chars?: number;
  args?: unknown;
}

export interface Report {
  host: Host;
  requests: number;
  modelRequests: number;
  toolCalls: number;
  /** Claude Code: ToolSearch calls that loaded deferred loki tools (counted in toolCalls). */
  toolSearchCalls: number;
  lokiCalls: number;
  lokiCallsByTool: Record<string, number>;
  lokiResultChars: number;
  largest?: { tool: string; chars: number };
  firstToolsChars: number;
  finalAnswer?: { text?: string; calls?: { name: string; args: unknown }[] };
  defects: Defect[];
  lokiResults: { tool: string; chars: number }[];
  conv: { items: Item[]; tools: { name: string }[] };
  runStatus?: string;
  receipt?: string;
  clients: { name: string; version: string }[];
  leftRunning: string[];
  /** What the host tried to send off the machine (through the proxy, refused). */
  egress: string[];
  process: { code: number | null; signal: string | null; timedOut: boolean; stderr: string; stdout: string };
}

export interface Project {
  base: string;
  root: string;
  home: string;
  installOutput?: string;
  cleanup(): void;
}

export interface Run {
  host: Host;
  project: Project;
  requests: unknown[];
  report: Report;
  cleanup(): void;
}

export const REPO: string;
export const HOST_BINS: Record<Host, string>;
export function cannotRun(host: Host): string | undefined;
export function makeProject(): Project;
export function honestRun(
  host: Host,
  opts?: { prematureStop?: boolean; probeGuard?: boolean; timeoutMs?: number; lenient?: boolean },
): Promise<Run>;
export function summary(report: Report): string;
export const PREMATURE_STOP_TEXT: string;

export function fakeCodexProvider(baseUrl: string): string;

export const HOST_BINS_DIR: string;
export const CLAUDE_ALLOWED_TOOLS: string;
export function offlineHost(
  host: Host,
  p: Project,
  api: { url: string },
): Promise<{ env: Record<string, string>; args: string[] }>;
export function settledDist(): Promise<void>;
export function leftRunning(base: string): string[];
export function storedOutcome(p: Project): { runStatus?: string; receipt?: string; clients: unknown[] };
export interface FakeApi {
  url: string;
  requests: unknown[];
  egress: string[];
  close(): Promise<void>;
}
export function scriptedApi(
  p: Project,
  opts?: { fromStatus?: boolean; prematureStop?: boolean; probeGuard?: boolean },
  onAnswer?: (answer: { text?: string; calls?: { name: string; args: Record<string, unknown> }[] }) => void,
): Promise<FakeApi>;
