/**
 * The stdio transport of loki-mcp: newline-delimited JSON-RPC on stdin and stdout, like the SDK's
 * StdioServerTransport, except that a line it cannot take is answered, never a reason to go quiet. The SDK's
 * transport, given a line over its 10 MB buffer, closes itself without a word and leaves the process up and deaf;
 * a line that is not JSON only reaches `onerror`, and the client waits for an answer that never comes. Here:
 *
 * - a line over MAX_LINE_BYTES is skipped to its end (never held in memory) and answered with Invalid Request
 *   (-32600), under the request's own id when the top level of the skipped text has one, so the client's call
 *   fails at once instead of timing out; otherwise under id null, as JSON-RPC 2.0 says for an id it cannot detect,
 *   except when the top level has a "method" and no "id" key at all: that is a notification, and JSON-RPC 2.0 says
 *   a notification is never answered (the line is only logged). The text is never parsed whole, so whether it was
 *   valid JSON is unknown: its top-level keys are what decides;
 * - a line that is not JSON is answered with Parse error (-32700, id null); JSON that is not a JSON-RPC message,
 *   with Invalid Request;
 * - stdin ending, or either stream failing, closes the transport and records why (`closed`): the server logs that
 *   and exits, rather than staying up with nobody to answer.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  JSONRPCMessageSchema,
  RequestIdSchema,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { log } from './log.js';

/** The longest line taken, as the SDK's own transport (its read buffer's limit). */
export const MAX_LINE_BYTES = 10 * 1024 * 1024;

type RequestId = string | number;

/**
 * Why the transport closed (kept as the session's stop reason) and the exit code that fits it: 0 when the client
 * went away, 1 when a stream failed.
 */
export interface Closed {
  reason: string;
  code: number;
}

const NEWLINE = 0x0a;

export class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Set when the transport closes, before `onclose` runs. */
  closed: Closed | undefined;

  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The over-long line being skipped: its top-level id is looked for as it passes. */
  private skipping: { scanner: TopLevelIdScanner; bytes: number } | undefined;

  constructor(
    private readonly input: NodeJS.ReadableStream,
    private readonly output: NodeJS.WritableStream,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

  private readonly onData = (chunk: Buffer | string) =>
    this.take(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  private readonly onEnd = () => this.finish({ reason: 'client disconnected', code: 0 });
  private readonly onInputError = (err: Error) => this.finish({ reason: `stdin failed: ${err.message}`, code: 1 });
  private readonly onOutputError = (err: Error) => this.finish({ reason: `stdout failed: ${err.message}`, code: 1 });

  async start(): Promise<void> {
    this.input.on('data', this.onData);
    this.input.on('end', this.onEnd);
    this.input.on('close', this.onEnd);
    this.input.on('error', this.onInputError);
    this.output.on('error', this.onOutputError);
  }

  send(message: JSONRPCMessage): Promise<void> {
    return this.write(`${JSON.stringify(message)}\n`);
  }

  async close(): Promise<void> {
    this.finish({ reason: 'the server closed the connection', code: 0 });
  }

  private write(line: string): Promise<void> {
    return new Promise((resolve) => {
      if (this.output.write(line)) resolve();
      else this.output.once('drain', resolve);
    });
  }

  private finish(closed: Closed): void {
    if (this.closed) return;
    this.closed = closed;
    this.input.off('data', this.onData);
    this.input.off('end', this.onEnd);
    this.input.off('close', this.onEnd);
    this.input.off('error', this.onInputError);
    this.output.off('error', this.onOutputError);
    this.pending = [];
    this.skipping = undefined;
    this.onclose?.();
  }

  /** Split a chunk into lines; a line growing past the limit is skipped from then on, not kept. */
  private take(chunk: Buffer): void {
    let start = 0;
    while (start <= chunk.length && !this.closed) {
      const nl = chunk.indexOf(NEWLINE, start);
      const piece = chunk.subarray(start, nl === -1 ? chunk.length : nl);
      if (this.skipping) {
        this.skipping.scanner.feed(piece);
        this.skipping.bytes += piece.length;
      } else if (this.pendingBytes + piece.length > this.maxLineBytes) {
        const scanner = new TopLevelIdScanner();
        for (const b of this.pending) scanner.feed(b);
        scanner.feed(piece);
        this.skipping = { scanner, bytes: this.pendingBytes + piece.length };
        this.pending = [];
        this.pendingBytes = 0;
      } else if (piece.length > 0) {
        this.pending.push(piece);
        this.pendingBytes += piece.length;
      }
      if (nl === -1) return;
      start = nl + 1;
      if (this.skipping) {
        const { scanner, bytes } = this.skipping;
        this.skipping = undefined;
        if (scanner.isNotification()) this.dropLongNotification(bytes);
        else this.refuseLong(scanner.requestId(), bytes);
      } else {
        const line = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
        this.line(line.toString('utf8').replace(/\r$/, ''));
      }
    }
  }

  private line(text: string): void {
    if (text.trim() === '') return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      log.warn(`refused a line that is not JSON (${(err as Error).message}); answered with a parse error`);
      void this.answerError(
        null,
        ErrorCode.ParseError,
        `Parse error: the line is not JSON (${(err as Error).message})`,
      );
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(raw);
    if (!parsed.success) {
      const id = idOf(raw);
      log.warn(`refused JSON that is not a JSON-RPC 2.0 message (id ${JSON.stringify(id)}); answered with an error`);
      void this.answerError(
        id,
        ErrorCode.InvalidRequest,
        'Invalid Request: not a JSON-RPC 2.0 message (it needs "jsonrpc": "2.0" and a method, or a result or error)',
      );
      return;
    }
    this.onmessage?.(parsed.data);
  }

  private refuseLong(id: RequestId | null, bytes: number): void {
    log.warn(
      `refused a JSON-RPC line of ${bytes} bytes, over the limit of ${this.maxLineBytes}; answered ${id === null ? 'with id null (no request id found)' : `request ${JSON.stringify(id)}`} with an error and went on serving`,
    );
    void this.answerError(
      id,
      ErrorCode.InvalidRequest,
      `Invalid Request: the message is ${bytes} bytes, over this server's limit of ${this.maxLineBytes} bytes per line; send less (a path to a file rather than its content)`,
    );
  }

  /** A notification gets no reply, even an error (JSON-RPC 2.0 section 4.1): only the log says it was dropped. */
  private dropLongNotification(bytes: number): void {
    log.warn(
      `dropped a JSON-RPC notification of ${bytes} bytes, over the limit of ${this.maxLineBytes} (a notification is never answered) and went on serving`,
    );
  }

  private answerError(id: RequestId | null, code: number, message: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.write(`${JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } })}\n`);
  }
}

/** The id of a parsed value that looks like a request, when it is a valid JSON-RPC id; else null. */
function idOf(raw: unknown): RequestId | null {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || !('id' in raw)) return null;
  const id = RequestIdSchema.safeParse((raw as { id: unknown }).id);
  return id.success ? id.data : null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Keys longer than this, even spelt with escapes, cannot be "id" or "method": not collected. */
const KEY_CAP = 64;
/** An id longer than this is not taken (a real one is a counter or a short string). */
const ID_CAP = 256;

/**
 * The top-level "id" and "method" of a JSON text fed in pieces, found without keeping the text: how a request
 * too long to read can still be answered under its own id. Strings and nesting are followed byte by byte, so an
 * "id" inside params or inside a string is never taken for the request's own.
 */
export class TopLevelIdScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The next string at depth 1 is a key. */
  private expectKey = false;
  private key: number[] | null = null;
  /** The key whose value comes next at depth 1. */
  private valueOf: string | null = null;
  /** The id's text being collected (a string with its quotes, or a number). */
  private idText: number[] | null = null;
  private idRaw: string | null = null;
  private method = false;
  /** A top-level "id" key was seen, whatever its value. */
  private idKey = false;

  feed(buf: Buffer): void {
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i]!;
      if (this.inString) this.stringByte(c);
      else this.structureByte(c);
    }
  }

  /** The request's id: null when there is no top-level "method" (not a request) or no usable top-level "id". */
  requestId(): RequestId | null {
    this.endNumber();
    if (!this.method || this.idRaw === null) return null;
    try {
      const id = RequestIdSchema.safeParse(JSON.parse(this.idRaw));
      return id.success ? id.data : null;
    } catch {
      return null;
    }
  }

  /** A top-level "method" and no top-level "id" key: a notification, which JSON-RPC never answers. */
  isNotification(): boolean {
    return this.method && !this.idKey;
  }

  private stringByte(c: number): void {
    const collect = (b: number) => {
      if (this.key) {
        if (this.key.length < KEY_CAP + 1) this.key.push(b);
      } else if (this.idText) {
        if (this.idText.length < ID_CAP) this.idText.push(b);
        else this.idText = null;
      }
    };
    if (this.escaped) {
      this.escaped = false;
      collect(c);
      return;
    }
    if (c === BACKSLASH) {
      this.escaped = true;
      collect(c);
      return;
    }
    if (c !== QUOTE) {
      collect(c);
      return;
    }
    this.inString = false;
    if (this.key) {
      const name = this.key.length <= KEY_CAP ? keyName(this.key) : '';
      this.key = null;
      if (name === 'method') this.method = true;
      if (name === 'id') this.idKey = true;
      this.valueOf = name;
      this.expectKey = false;
    } else if (this.idText) {
      this.idText.push(c);
      this.idRaw = Buffer.from(this.idText).toString('utf8');
      this.idText = null;
    }
  }

  private structureByte(c: number): void {
    switch (c) {
      case 0x7b: // {
      case 0x5b: // [
        this.endNumber();
        this.depth++;
        if (this.depth === 1 && c === 0x7b) this.expectKey = true;
        if (this.depth === 2 && this.valueOf === 'id') this.idRaw = null; // an object or array is no id
        return;
      case 0x7d: // }
      case 0x5d: // ]
        this.endNumber();
        this.depth--;
        return;
      case QUOTE:
        this.inString = true;
        if (this.depth !== 1) return;
        if (this.expectKey) this.key = [];
        else if (this.valueOf === 'id') this.idText = [c];
        return;
      case 0x3a: // :
        // The key was recorded in valueOf when its string ended.
        return;
      case 0x2c: // ,
        this.endNumber();
        if (this.depth === 1) {
          this.expectKey = true;
          this.valueOf = null;
        }
        return;
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
        this.endNumber();
        return;
      default:
        // A number or a literal (true, false, null) as the id's value.
        if (this.depth !== 1 || this.valueOf !== 'id') return;
        if (!this.idText) this.idText = [];
        if (this.idText.length < ID_CAP) this.idText.push(c);
    }
  }

  private endNumber(): void {
    if (!this.idText || this.inString) return;
    this.idRaw = Buffer.from(this.idText).toString('utf8');
    this.idText = null;
    this.valueOf = null;
  }
}

/** A key's text as JSON reads it (escapes decoded), or '' when it is not a valid string. */
function keyName(bytes: number[]): string {
  try {
    return JSON.parse(`"${Buffer.from(bytes).toString('utf8')}"`) as string;
  } catch {
    return '';
  }
}
