/**
 * Record schemas, the shape of what `.loki/` files hold, are written with zod/mini (`import * as z from
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
