/**
 * Logging to stderr only: stdout carries the MCP protocol. LOKI_LOG_LEVEL = error | warn | info | debug.
 */
const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
type Level = keyof typeof LEVELS;

const configured = (process.env.LOKI_LOG_LEVEL ?? 'warn').toLowerCase();
const threshold = LEVELS[(configured in LEVELS ? configured : 'warn') as Level];

function write(level: Level, parts: unknown[]): void {
  if (LEVELS[level] > threshold) return;
  const text = parts
    .map((p) => (typeof p === 'string' ? p : p instanceof Error ? (p.stack ?? p.message) : JSON.stringify(p)))
    .join(' ');
  process.stderr.write(`[loki ${level}] ${text}\n`);
}

export const log = {
  error: (...parts: unknown[]) => write('error', parts),
  warn: (...parts: unknown[]) => write('warn', parts),
  info: (...parts: unknown[]) => write('info', parts),
  debug: (...parts: unknown[]) => write('debug', parts),
};

/** Route Node's process warnings (an anchor that could not be written, ...) through the same stderr logger, once. */
let routed = false;
export function routeWarnings(): void {
  if (routed) return;
  routed = true;
  process.removeAllListeners('warning');
  process.on('warning', (w) => log.warn(w.message));
}
