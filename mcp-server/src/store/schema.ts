/**
 * Record schemas, the shape of what the database's documents and rows hold, are written with zod/mini (`import * as z from
 * 'zod/mini'` in each records module): the tree-shakable API over the same core as classic zod. A classic schema
 * attaches its whole method set to every instance, and building the record schemas that way was a large part of
 * each hook's start-up (bench/NOTES.md). Tool input schemas stay classic: the MCP SDK and the tool listing read
 * them. This module validates against either kind.
 */
import * as z from 'zod/mini';

// Classic zod installs English messages when it loads; a bundle with only zod/mini has to ask for them.
z.config(z.locales.en());

/** Any zod schema, classic or mini, that parses to T. */
export type Schema<T> = z.core.$ZodType<T>;

export type SafeParseResult<T> = { success: true; data: T } | { success: false; error: z.core.$ZodError };

/** Validate `value` against a classic or mini schema. */
export function safeParse<T>(schema: Schema<T>, value: unknown): SafeParseResult<T> {
  return z.safeParse(schema, value) as SafeParseResult<T>;
}

/**
 * Parse a stored row's JSON text and validate it: the value, or its first problem as "path: message". With
 * `id`, the value's own id must be the row's.
 */
export function parseStored<T>(schema: Schema<T>, text: string, id?: string): { value: T } | { issue: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { issue: 'not valid JSON' };
  }
  const parsed = safeParse(schema, raw);
  if (parsed.success) {
    if (id !== undefined && (parsed.data as { id?: unknown }).id !== id) return { issue: 'id: does not match the row' };
    return { value: parsed.data };
  }
  const first = parsed.error.issues[0];
  return { issue: `${first?.path.join('.') || 'record'}: ${first?.message ?? 'invalid'}` };
}

/** What a read says of a row that no longer matches its schema. */
export function damagedMessage(what: string, issue: string): string {
  return `${what} in .loki/loki.db does not match its schema (${issue}): it was changed outside loki-mode; run loki doctor`;
}

/**
 * `build`, run on the first call and remembered. Record schemas are built this way where a process may never read
 * the record: building a zod schema costs about 15 microseconds a node, and the hooks' bundle held 600 of them, half
 * for records a hook never reads.
 */
export function onFirstUse<T>(build: () => T): () => T {
  let built: { value: T } | undefined;
  return () => (built ??= { value: build() }).value;
}
