/**
 * The dashboard's tokens: an operator token (read and control) and a read-only one. Generated on first start and
 * kept in `$LOKI_HOME/dashboard/tokens.json` (0600 in a 0700 folder), or given as LOKI_DASHBOARD_TOKEN and
 * LOKI_DASHBOARD_READ_TOKEN. A request proves its scope with `Authorization: Bearer <token>`.
 *
 * What a token does not do: the agent runs as the same user, so it can read this file (or the environment) and
 * act as the person, as it can run `loki pause` itself. Actions are audited as the person's; docs/dashboard.md
 * and the receipt's notes say that the server cannot tell the two apart.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { replacePrivateFile } from '../home.js';
import { UsageError } from '../errors.js';

export type Scope = 'read' | 'operator';

export interface Tokens {
  operator: string;
  read: string;
  /** Where each came from, for the start-up message. */
  source: 'environment' | 'file' | 'generated';
  file: string;
}

const MIN_TOKEN_CHARS = 16;

export function tokensFile(lokiHome: string): string {
  return path.join(lokiHome, 'dashboard', 'tokens.json');
}

const newToken = () => crypto.randomBytes(24).toString('base64url');

/** The tokens to accept: the environment's, else the kept ones, else new ones kept for next time. */
export function loadTokens(lokiHome: string, env: NodeJS.ProcessEnv): Tokens {
  const file = tokensFile(lokiHome);
  const fromEnv = env.LOKI_DASHBOARD_TOKEN?.trim();
  const readFromEnv = env.LOKI_DASHBOARD_READ_TOKEN?.trim();
  for (const [name, value] of [
    ['LOKI_DASHBOARD_TOKEN', fromEnv],
    ['LOKI_DASHBOARD_READ_TOKEN', readFromEnv],
  ] as const)
    if (value !== undefined && value !== '' && value.length < MIN_TOKEN_CHARS)
      throw new UsageError(`${name} is ${value.length} characters: use at least ${MIN_TOKEN_CHARS} (random)`);
  let kept: { operator: string; read: string } | undefined;
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { operator?: unknown; read?: unknown };
    if (typeof parsed.operator === 'string' && typeof parsed.read === 'string')
      kept = { operator: parsed.operator, read: parsed.read };
  } catch {
    kept = undefined;
  }
  let source: Tokens['source'] = 'file';
  if (!kept) {
    kept = { operator: newToken(), read: newToken() };
    replacePrivateFile(lokiHome, file, `${JSON.stringify(kept, null, 2)}\n`);
    source = 'generated';
  }
  const operator = fromEnv || kept.operator;
  const read = readFromEnv || kept.read;
  if (operator === read) throw new UsageError('LOKI_DASHBOARD_READ_TOKEN must differ from the operator token');
  return { operator, read, source: fromEnv ? 'environment' : source, file };
}

/** The scope a presented bearer token grants, compared in constant time; undefined when it grants none. */
export function scopeOf(tokens: Tokens, header: string | undefined): Scope | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const given = digest(m[1]!);
  if (crypto.timingSafeEqual(given, digest(tokens.operator))) return 'operator';
  if (crypto.timingSafeEqual(given, digest(tokens.read))) return 'read';
  return undefined;
}

/** Hashed first, so the comparison takes the same time whatever the lengths. */
function digest(s: string): Buffer {
  return crypto.createHash('sha256').update(s).digest();
}
