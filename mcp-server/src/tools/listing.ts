/**
 * The `tools/list` answer, computed once from the tool specs. It is what every host pays in context on every
 * session, so it is kept lean: the JSON Schema of each tool without `$schema`, and without the abuse caps
 * (string lengths, array sizes) that the server enforces anyway and names in its error when a call exceeds one.
 * Types, enums, required fields, numeric ranges and every description stay.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { annotationsFor, type AnyToolSpec } from './define.js';

const DROPPED_KEYS = new Set(['$schema', 'maxLength', 'minLength', 'maxItems', 'minItems']);

export function toolListing(specs: readonly AnyToolSpec[]): Tool[] {
  return specs.map((spec) => ({
    name: spec.name,
    title: spec.title,
    description: spec.description,
    inputSchema: lean(z.toJSONSchema(spec.input, { io: 'input' })) as Tool['inputSchema'],
    annotations: annotationsFor(spec),
  }));
}

function lean(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(lean);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node))
    if (!DROPPED_KEYS.has(k))
      out[k] =
        k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, lean(s)])) : lean(v);
  return out;
}
