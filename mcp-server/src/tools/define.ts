/**
 * How a tool is declared: metadata as data (name, title, description, kind, strict input schema), a handler that
 * returns plain data, and a renderer for the compact text. Annotations are derived from `kind`, so none can be
 * forgotten. Every result carries `structuredContent` plus the text; every failure becomes an `isError` result
 * whose message says how to fix it (the one central catch).
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Project } from '../project.js';
import type { SessionIdentity } from '../run/sessions.js';
import { completeInterruptedRollback } from '../checkpoints/rollback.js';
import { isExpectedError } from '../errors.js';
import { log } from '../log.js';

/** read: changes nothing. write: changes state, reversible or additive. destructive: discards or overwrites. */
export type ToolKind = 'read' | 'write' | 'destructive';

export const MAX_RESPONSE_BYTES = 25 * 1024;

export interface ToolContext {
  project: Project;
  /** The agent session this server process serves (created on first use). */
  session(): SessionIdentity;
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
  input: z.ZodObject<Shape>;
  handler: (args: z.infer<z.ZodObject<Shape>>, ctx: ToolContext) => Promise<Out>;
  render: (out: Out) => string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyToolSpec = ToolSpec<any, any>;

export function defineTool<Shape extends z.ZodRawShape, Out extends object>(
  spec: ToolSpec<Shape, Out>,
): ToolSpec<Shape, Out> {
  return spec;
}

/** The four hints (the title is the tool's own `title`, not repeated here). */
export function annotationsFor(spec: AnyToolSpec) {
  return {
    readOnlyHint: spec.kind === 'read',
    destructiveHint: spec.kind === 'destructive',
    idempotentHint: spec.idempotent,
    openWorldHint: false,
  };
}

export function registerTool(server: McpServer, spec: AnyToolSpec, ctx: ToolContext): void {
  server.registerTool(
    spec.name,
    { title: spec.title, description: spec.description, inputSchema: spec.input, annotations: annotationsFor(spec) },
    async (args: Record<string, unknown>): Promise<CallToolResult> => {
      try {
        if (!spec.finishesRollback) await completeInterruptedRollback(ctx.project);
        const out = await spec.handler(args, ctx);
        return toResult(spec, out);
      } catch (err) {
        return errorResult(spec.name, err);
      }
    },
  );
}

export function toResult(spec: AnyToolSpec, out: object): CallToolResult {
  let text = spec.render(out);
  if (Buffer.byteLength(text, 'utf8') > MAX_RESPONSE_BYTES)
    text = `${text.slice(0, MAX_RESPONSE_BYTES - 200)}\n... (truncated; the structured result has the rest)`;
  const structured = out as Record<string, unknown>;
  if (Buffer.byteLength(JSON.stringify(structured), 'utf8') > MAX_RESPONSE_BYTES) {
    throw new Error(
      `internal: ${spec.name} produced a response over ${MAX_RESPONSE_BYTES} bytes; narrow the request (filters, limit)`,
    );
  }
  return { content: [{ type: 'text', text }], structuredContent: structured };
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
