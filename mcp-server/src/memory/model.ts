/**
 * The memory item: three layers in one record type, one row per item in the `memory` table of `.loki/loki.db`
 * (memory/items.ts), validated against this schema when written and on every read.
 *   episode  what a task tried and what happened: outcome, errors, lessons, files
 *   pattern  a semantic pattern or anti-pattern: when it applies, confidence, the episodes it came from
 *   skill    a named list of steps that worked
 * Every item carries its provenance (run, task, time, source). Pure: no I/O here.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { PHASES } from '../domain/phases.js';
import { onFirstUse } from '../store/schema.js';

export const LAYERS = ['episode', 'pattern', 'skill'] as const;
export type Layer = (typeof LAYERS)[number];

export const LAYER_PREFIX: Readonly<Record<Layer, string>> = { episode: 'ep', pattern: 'pt', skill: 'sk' };

export const OUTCOMES = ['success', 'failure', 'partial'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Limits, shared by the tool schema and the record schema. */
export const LIMITS = {
  title: 200,
  body: 8000,
  item: 1000,
  list: 20,
  files: 50,
  file: 512,
  steps: 40,
  tags: 12,
  tag: 40,
  taskType: 40,
  ref: 64,
  /** An encoded item may not exceed this (so any single item fits in one response). */
  itemBytes: 20_000,
} as const;

export const ITEM_ID = /^(?:ep|pt|sk)-[a-z0-9][a-z0-9-]{2,60}$/;
export const TAG = /^[a-z0-9][a-z0-9._-]*$/;

const str = (max: number) => z.string().max(max);

// Built on first use (store/schema.ts onFirstUse): a server answers `initialize`, and most tool calls, without them.
const schemas = onFirstUse(() => {
  const provenance = z
    .object({
      run: z.string().max(LIMITS.ref).nullable(),
      task: z.string().max(LIMITS.ref).nullable(),
      at: z.string().min(1).max(64),
      source: z.string().min(1).max(120),
    })
    .strict();

  const item = z
    .object({
      id: z.string().regex(ITEM_ID),
      layer: z.enum(LAYERS),
      title: str(LIMITS.title).min(1),
      body: str(LIMITS.body),
      tags: z.array(z.string().max(LIMITS.tag).regex(TAG)).max(LIMITS.tags),
      phase: z.enum(PHASES).nullable(),
      taskType: str(LIMITS.taskType).nullable(),
      provenance,
      /** Episode: how it went. */
      outcome: z.enum(OUTCOMES).nullable(),
      errors: z.array(str(LIMITS.item)).max(LIMITS.list),
      lessons: z.array(str(LIMITS.item)).max(LIMITS.list),
      files: z.array(str(LIMITS.file)).max(LIMITS.files),
      /** Pattern and skill: when it applies. */
      when: str(LIMITS.item).nullable(),
      /** Pattern: an anti-pattern is something to avoid. */
      antiPattern: z.boolean(),
      confidence: z.number().min(0).max(1).nullable(),
      /** Skill: the steps. */
      steps: z.array(str(LIMITS.item)).max(LIMITS.steps),
      /** Pattern and skill: the episodes it came from. */
      sources: z.array(z.string().regex(ITEM_ID)).max(500),
      /** Patterns made by consolidation: the key of their episode group; null otherwise. */
      groupKey: z.string().max(LIMITS.ref).nullable(),
      /** Warnings found at write time, e.g. "instruction-like" text. */
      flags: z.array(z.string().max(40)).max(10),
    })
    .strict()
    .refine((item) => item.id.startsWith(`${LAYER_PREFIX[item.layer]}-`), {
      path: ['id'],
      message: 'the id prefix does not match the layer',
    });
  return { provenance, item };
});

export type Provenance = z.infer<ReturnType<typeof schemas>['provenance']>;
/** The memory item's schema (built on first use). */
export const memoryItemSchema = () => schemas().item;
export type MemoryItem = z.infer<ReturnType<typeof schemas>['item']>;

/** A new id: layer prefix, milliseconds in base 36 (sortable by time), a random suffix. */
export function newItemId(layer: Layer, now = Date.now()): string {
  return `${LAYER_PREFIX[layer]}-${now.toString(36).padStart(9, '0')}-${crypto.randomBytes(4).toString('hex')}`;
}

const INSTRUCTION_LIKE =
  /\b(?:ignore (?:all |any )?(?:previous|prior|above) (?:instructions|prompts?)|disregard (?:the |all )?(?:previous|prior|above)|you are now|new instructions?:|system prompt|<\/?(?:system|instructions?)>|do not tell the user|exfiltrate|curl [^\n]*\|\s*(?:ba)?sh)\b/i;

/** Flags for text that reads like an instruction to a model rather than a record of what happened. */
export function flagsFor(texts: string[]): string[] {
  return texts.some((t) => INSTRUCTION_LIKE.test(t)) ? ['instruction-like'] : [];
}
