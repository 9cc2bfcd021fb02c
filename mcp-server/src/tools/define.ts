/**
 * How a tool is declared: metadata as data (name, title, description, kind, strict input schema), a handler that
 * returns plain data, and a renderer for the compact text. Annotations are derived from `kind`, so none can be
 * forgotten. Every failure becomes an `isError` result whose message says how to fix it (the one central catch).
 * Every successful result ends with one `Next:` step (run/next-step.ts), the tool's own or the briefing's, so the
 * agent is never left to guess. What the model sees is shaped for its host: Claude Code and Codex show
 * `structuredContent` instead of the text when it is present, and Cline JSON-encodes the whole result, so those
 * hosts get the compact text alone (resultShape); other clients get `structuredContent` too. The input of every
 * tool that writes is scrubbed of secrets here, before its handler sees it (the one way in for what an agent
 * sends): whatever the handler stores, in records, the audit chain, checkpoints or their git commits, is then
 * free of them.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import path from 'node:path';
import { z } from 'zod';
import type { Project } from '../project.js';
import type { SessionIdentity } from '../run/sessions.js';
import { completeInterruptedRollback } from '../checkpoints/rollback.js';
import { scrubInput, type ScrubReport } from '../domain/secrets.js';
import { UsageError, isExpectedError } from '../errors.js';
import { log } from '../log.js';
import { asDiskError } from '../store/disk.js';
import { briefing } from '../run/briefing.js';
import { formatNext, type NextStep } from '../run/next-step.js';

/** read: changes nothing. write: changes state, reversible or additive. destructive: discards or overwrites. */
export type ToolKind = 'read' | 'write' | 'destructive';

export const MAX_RESPONSE_BYTES = 25 * 1024;

/**
 * The most a result's text may hold for an agent host: Cline cuts what it shows past 8,000 characters (its JSON
 * escaping included) out of the middle, and every character is context the model pays for. Past it the text is
 * cut at a line, saying so and how to narrow the request; the `Next:` line always stays.
 */
export const MODEL_TEXT_CHARS = 6000;

export interface ToolContext {
  project: Project;
  /** What the connected client shows its model: 'text' for the agent hosts we know, 'both' for anything else. */
  shape(): ResultShape;
  /** The agent session this server process serves (created on first use). */
  session(): SessionIdentity;
  /** What registerTool redacted from this call's input (set for each call of a tool that writes). */
  scrubbed?: ScrubReport;
}

export interface ToolSpec<Shape extends z.ZodRawShape, Out extends object> {
  name: string;
  title: string;
  description: string;
  kind: ToolKind;
  /** Same arguments, same effect: safe for a client to retry. */
  idempotent: boolean;
  /** The handler completes an interrupted rollback itself (every other tool finishes one before it runs). */
  finishesRollback?: boolean;
  /**
   * Input fields (by name, at any depth) that name things rather than say them: ids, claim tokens, paths. They
   * reach the handler as sent; every other string of a writing tool's input is scrubbed of secrets first.
   */
  verbatim?: readonly string[];
  /** The result says what was redacted itself (counting `ctx.scrubbed`), so no note is added to it. */
  reportsRedactions?: boolean;
  input: z.ZodObject<Shape>;
  handler: (args: z.infer<z.ZodObject<Shape>>, ctx: ToolContext) => Promise<Out>;
  render: (out: Out) => string;
  /**
   * The step after this result, when the result decides it (a claim token to hand on, the next council seat);
   * otherwise the briefing's `next` for the run as it now stands.
   */
  next?: (out: Out) => NextStep | string | undefined;
}

/** 'text': the compact text only (what agent hosts show best); 'both': text plus `structuredContent`. */
export type ResultShape = 'text' | 'both';

/**
 * Claude Code and Codex show a result's `structuredContent` as JSON in place of its text, and Cline JSON-encodes
 * the whole result with both (shared/research/hosts-in-practice.md): for them the text alone, which carries
 * everything the model needs and is 2-4x smaller. Other clients (SDK programs, tests, unknown hosts) get both.
 */
export function resultShape(provider: string): ResultShape {
  return provider === 'claude-code' || provider === 'codex' || provider === 'cline' ? 'text' : 'both';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyToolSpec = ToolSpec<any, any>;

export function defineTool<Shape extends z.ZodRawShape, Out extends object>(
  spec: ToolSpec<Shape, Out>,
): ToolSpec<Shape, Out> {
  return spec;
}

/**
 * The four hints, leaving out what every host reads the same way when absent (every byte of tools/list is in each
 * request the host sends): readOnly and idempotent default to false everywhere, and destructive and idempotent mean
 * nothing for a read-only tool. `destructiveHint` and `openWorldHint` are always sent when a tool has one: the
 * protocol's defaults are true, but Claude Code reads a missing hint as false, and it must see that
 * loki_rollback destroys. The title is the tool's own `title`, not repeated here.
 */
export function annotationsFor(spec: AnyToolSpec) {
  if (spec.kind === 'read') return { readOnlyHint: true, openWorldHint: false };
  return {
    destructiveHint: spec.kind === 'destructive',
    ...(spec.idempotent ? { idempotentHint: true } : {}),
    openWorldHint: false,
  };
}

/** The hints as a host reads them: the protocol's defaults where a hint is not sent. */
export const HINT_DEFAULTS = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true };

export function registerTool(server: McpServer, spec: AnyToolSpec, ctx: ToolContext): void {
  server.registerTool(
    spec.name,
    { title: spec.title, description: spec.description, inputSchema: spec.input, annotations: annotationsFor(spec) },
    async (args: Record<string, unknown>): Promise<CallToolResult> => {
      try {
        if (!spec.finishesRollback) await completeInterruptedRollback(ctx.project);
        let out: object;
        let report: ScrubReport | undefined;
        if (spec.kind === 'read') out = await spec.handler(args, ctx);
        else {
          const input = scrubbedInput(spec, args);
          report = input.report;
          out = await spec.handler(input.args, { ...ctx, scrubbed: report });
        }
        const notes: string[] = [];
        if (report && report.redacted > 0 && !spec.reportsRedactions) {
          out = { ...out, inputRedacted: { count: report.redacted, kinds: report.kinds } };
          notes.push(
            `Secrets: ${report.redacted} value(s) of the input looked like secrets (${report.kinds.join(', ')}) and were stored as [REDACTED:<kind>].`,
          );
        }
        const next = await nextFor(spec, out, ctx);
        return toResult(spec, out, { next, notes, shape: ctx.shape() });
      } catch (err) {
        // A full or read-only disk, or a missing permission, is told as what it is, with the fix.
        return errorResult(spec.name, asDiskError(err, path.join(ctx.project.root, '.loki')) ?? err);
      }
    },
  );
}

/**
 * The result's own next step, else the briefing's (a look that counts no turn). Never throws: the call has done
 * its work by now (a write is committed), and a failure here must not report it as failed.
 */
async function nextFor(spec: AnyToolSpec, out: object, ctx: ToolContext): Promise<string> {
  try {
    const own = spec.next?.(out);
    if (own !== undefined) return typeof own === 'string' ? own : formatNext(own);
    return (await briefing(ctx.project, ctx.session(), { peek: true })).next;
  } catch (err) {
    log.warn(`${spec.name}: the next step could not be worked out:`, err instanceof Error ? err.message : err);
    return 'call loki_status for the next step';
  }
}

/**
 * The input with secrets replaced by `[REDACTED:<kind>]` markers, checked against the schema again (a marker may
 * be longer than what it replaced); the values of the spec's verbatim fields are left as sent.
 */
function scrubbedInput(
  spec: AnyToolSpec,
  args: Record<string, unknown>,
): { args: Record<string, unknown>; report: ScrubReport } {
  const { value, report } = scrubInput(args, new Set(spec.verbatim));
  if (report.redacted === 0) return { args, report };
  const parsed = spec.input.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(
      `${report.redacted} secret-looking value(s) (${report.kinds.join(', ')}) were replaced by [REDACTED:<kind>] markers, and then ${issue?.path.join('.') || 'the input'}: ${issue?.message ?? 'invalid'}; send it without the secret (it is never stored)`,
    );
  }
  return { args: parsed.data as Record<string, unknown>, report };
}

export function toResult(
  spec: AnyToolSpec,
  out: object,
  extra: { next?: string; notes?: readonly string[]; shape?: ResultShape } = {},
): CallToolResult {
  const tail = [...(extra.notes ?? []), ...(extra.next ? [`Next: ${extra.next}`] : [])].join('\n');
  let text = spec.render(out);
  const room = extra.shape === 'text' ? MODEL_TEXT_CHARS - tail.length - 1 : MAX_RESPONSE_BYTES - 200 - tail.length;
  if ((extra.shape === 'text' ? text.length : Buffer.byteLength(text, 'utf8')) > room) text = cut(text, room);
  if (tail) text = `${text}\n${tail}`;
  if (extra.shape === 'text') return { content: [{ type: 'text', text }] };
  const structured = extra.next === undefined ? (out as Record<string, unknown>) : { ...out, next: extra.next };
  // Too big to send whole: the text alone. Never an error: a tool that writes has written by now, and an error
  // would tell the agent it had not.
  if (Buffer.byteLength(JSON.stringify(structured), 'utf8') > MAX_RESPONSE_BYTES) {
    log.warn(`${spec.name}: the structured result is over ${MAX_RESPONSE_BYTES} bytes; sent the text alone`);
    return { content: [{ type: 'text', text }] };
  }
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

/** The text cut at a line boundary to fit `room` characters, with a note of what was left out and how to see it. */
function cut(text: string, room: number): string {
  const note = (n: number) =>
    `... (${n} more characters not shown: narrow the request, e.g. a filter, \`limit\` or \`ids\`)`;
  let keep = text.slice(0, Math.max(0, room - note(text.length).length - 1));
  const nl = keep.lastIndexOf('\n');
  if (nl > keep.length / 2) keep = keep.slice(0, nl);
  return `${keep}\n${note(text.length - keep.length)}`;
}

/** Errors the model can act on keep their message; anything unexpected is logged with its stack. */
export function errorResult(tool: string, err: unknown): CallToolResult {
  const known = isExpectedError(err);
  const message = err instanceof Error ? err.message : String(err);
  if (!known) log.error(`${tool} failed:`, err instanceof Error ? (err.stack ?? message) : message);
  return {
    isError: true,
    content: [
      { type: 'text', text: `${tool}: ${message}${known ? '' : ' (unexpected error; details are on the server log)'}` },
    ],
  };
}
