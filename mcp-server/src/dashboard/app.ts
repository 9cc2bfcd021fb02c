/**
 * The dashboard's HTTP surface, as a Hono app: the page and its script, the JSON API, server-sent events and
 * /metrics. Every request passes the same checks in this order: its Host must name this dashboard (a page on
 * another site cannot reach it through a rebound DNS name), an Origin it sends must be this dashboard's, and but
 * for /api/health and the page shell (which carry no data) it must bear a token; controls need the operator
 * token, are POST only, and take a JSON body. GET never changes anything.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import * as z from 'zod/mini';
import type { Project } from '../project.js';
import { VERSION } from '../version.js';
import { ConfigError, StoreError, isExpectedError } from '../errors.js';
import { log } from '../log.js';
import { TASK_STATES, type TaskState } from '../domain/tasks.js';
import { SIGNAL_VERBS, signalRun, type SignalVerb } from '../run/control.js';
import { requestReview } from '../trust/council.js';
import { waiveItems } from '../trust/waivers.js';
import { rollback } from '../checkpoints/rollback.js';
import { scrubInput } from '../domain/secrets.js';
import { WAIVER_REASON_CHARS } from '../domain/waivers.js';
import { scopeOf, type Scope, type Tokens } from './auth.js';
import { FEED_EVENTS, type Change, type ChangeFeed } from './events.js';
import { metricsText } from './metrics.js';
import type { Assets } from './assets.js';
import {
  auditVerifyView,
  auditView,
  checklistPageView,
  checkpointsView,
  contextView,
  councilView,
  memoryView,
  receiptCheckView,
  receiptView,
  receiptsView,
  statusView,
  tasksView,
  verificationView,
} from './views.js';

export interface AppOptions {
  project: Project;
  tokens: Tokens;
  feed: ChangeFeed;
  assets: Assets;
  /** Host header values this dashboard answers to (`127.0.0.1:57374`, `localhost:57374`, ...). */
  hosts: ReadonlySet<string>;
  /** Seconds between keep-alive comments on an event stream. */
  keepAliveSeconds?: number;
}

type Env = { Variables: { scope: Scope } };

const VIEW_CACHE_MS = 2000;
const VIEW_CACHE_ENTRIES = 64;

/** A review's reason; a waiver's is held to the waiver rules' own bounds (domain/waivers.ts). */
const REASON = z.string().check(z.minLength(1), z.maxLength(1000));
const bodies = {
  none: z.strictObject({}),
  review: z.strictObject({ reason: z.optional(REASON) }),
  waive: z.strictObject({
    reason: z.string().check(z.minLength(WAIVER_REASON_CHARS.min), z.maxLength(WAIVER_REASON_CHARS.max)),
  }),
  rollback: z.strictObject({ confirm: z.string().check(z.maxLength(40)), code: z.optional(z.boolean()) }),
};

export function dashboardApp(o: AppOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { project, feed } = o;

  app.use('*', hostAndOrigin(o.hosts));
  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        formAction: ["'none'"],
        baseUri: ["'none'"],
      },
      referrerPolicy: 'no-referrer',
      crossOriginResourcePolicy: 'same-origin',
    }),
  );
  app.use('/api/*', async (c, next) => {
    c.header('Cache-Control', 'no-store');
    await next();
  });

  app.get('/api/health', (c) => c.json({ ok: true, version: VERSION }));

  // The page shell and its script: static, the same for everyone, no run data in them.
  for (const [route, name] of [
    ['/', 'index.html'],
    ['/app.js', 'app.js'],
    ['/app.css', 'app.css'],
  ] as const)
    app.get(route, (c) => {
      const a = o.assets.get(name);
      if (!a) return c.text('the dashboard page is not built: run `npm run build` in the checkout', 500);
      c.header('Content-Type', a.type);
      return c.body(a.body);
    });

  app.use('/api/*', requireScope(o.tokens, 'read'));
  app.use('/metrics', requireScope(o.tokens, 'read'));

  // Twenty open pages reload the same view after the same change: it is read once per announced change of the run
  // (and at least every 2 s, for what moves with the clock alone, such as a lease running out).
  const cache = new Map<string, { stamp: string; at: number; value: Promise<unknown> }>();
  const read = async <T>(c: Context<Env>, fn: (c: Context<Env>) => T | Promise<T>): Promise<T> => {
    const key = c.req.url;
    // The stamp the feed last announced (at most every 2 s in a busy run): pages reloading after the same announcement
    // share one read, even while a busy run moves on between their requests; one still being read is waited
    // for, not read again.
    const stamp = feed.announced();
    const hit = cache.get(key);
    if (hit && hit.stamp === stamp && performance.now() - hit.at < VIEW_CACHE_MS) return (await hit.value) as T;
    const value = Promise.resolve().then(() => fn(c));
    if (cache.size >= VIEW_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(key, { stamp, at: performance.now(), value });
    // A failed read is not kept: the next request tries again.
    value.catch(() => cache.get(key)?.value === value && cache.delete(key));
    return value;
  };
  const view =
    <T>(fn: (c: Context<Env>) => T | Promise<T>) =>
    async (c: Context<Env>) =>
      c.json(await read(c, fn));

  // The scope is the asker's (the page disables its controls for a read-only token), so it is added after the
  // shared read.
  app.get('/api/status', async (c) => c.json({ ...(await read(c, () => statusView(project))), scope: c.get('scope') }));
  app.get(
    '/api/tasks',
    view((c) => tasksView(project, stateFilter(c.req.query('status')))),
  );
  app.get(
    '/api/verification',
    view(() => verificationView(project)),
  );
  app.get(
    '/api/checklist',
    view(() => checklistPageView(project)),
  );
  app.get(
    '/api/council',
    view(() => councilView(project)),
  );
  app.get(
    '/api/context',
    view(() => contextView(project)),
  );
  app.get(
    '/api/memory',
    view((c) => memoryView(project, (c.req.query('q') ?? '').slice(0, 500), int(c.req.query('limit'), 10, 'limit'))),
  );
  app.get(
    '/api/checkpoints',
    view(() => checkpointsView(project)),
  );
  app.get(
    '/api/audit',
    view((c) => {
      const before = c.req.query('before');
      return auditView(
        project,
        before === undefined ? undefined : int(before, 0, 'before'),
        int(c.req.query('limit'), 100, 'limit', 500),
      );
    }),
  );
  app.get(
    '/api/audit/verify',
    view(() => auditVerifyView(project)),
  );
  app.get(
    '/api/receipts',
    view(() => receiptsView(project)),
  );
  const noReceipt = (c: Context<Env>) =>
    c.json({ error: `no receipt for run "${(c.req.param('run') ?? '').slice(0, 80)}"` }, 404);
  app.get('/api/receipts/:run', async (c) => {
    const r = await read(c, () => receiptView(project, c.req.param('run')));
    return r ? c.json(r) : noReceipt(c);
  });
  // The check re-hashes the audit chain and snapshots the tree with git (it adds blobs to .git/objects, as every
  // verification does): asked for by a person, not read on every change.
  app.get('/api/receipts/:run/check', async (c) => {
    const r = await read(c, () => receiptCheckView(project, c.req.param('run')));
    return r ? c.json(r) : noReceipt(c);
  });

  app.get('/metrics', (c) => {
    c.header('Content-Type', 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    return c.body(metricsText(project));
  });

  app.get('/api/events', (c) =>
    streamSSE(c, async (stream) => {
      // Comments keep proxies and idle timers from closing a quiet stream; neither they nor the handler keep
      // the process alive once the stream ends (Ctrl-C on `loki dashboard` with pages open ends it at once).
      let ended!: () => void;
      const done = new Promise<void>((resolve) => (ended = resolve));
      // A page that stops reading (a laptop asleep) holds one write at most: changes that come meanwhile are
      // merged into the next message, not queued one by one.
      let writing = false;
      let waiting: Change | null = null;
      const send = (change: Change) => {
        if (writing) {
          waiting = waiting ? merged(waiting, change) : change;
          return;
        }
        writing = true;
        void stream
          .writeSSE({ event: 'change', data: JSON.stringify(change) })
          .catch(() => undefined)
          .finally(() => {
            writing = false;
            const next = waiting;
            waiting = null;
            if (next) send(next);
          });
      };
      const unsubscribe = feed.subscribe(send);
      const keepAlive = setInterval(
        () => {
          if (!writing) void stream.write(': keep-alive\n\n').catch(() => undefined);
        },
        (o.keepAliveSeconds ?? 15) * 1000,
      );
      keepAlive.unref();
      stream.onAbort(() => {
        clearInterval(keepAlive);
        unsubscribe();
        ended();
      });
      await stream.writeSSE({ event: 'hello', data: JSON.stringify({ stamp: feed.stamp, version: VERSION }) });
      await done;
    }),
  );

  // Controls: the operator's, POST with a JSON body, each recorded as the person's action by its service.
  const operator = [
    requireScope(o.tokens, 'operator'),
    bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.json({ error: 'the body is over 16 KB' }, 413) }),
  ] as const;
  for (const verb of SIGNAL_VERBS)
    app.post(`/api/control/${verb}`, ...operator, async (c) => {
      await body(c, bodies.none);
      const r = await signalRun(project, verb as SignalVerb, 'the dashboard');
      feed.poll(true);
      return c.json({ ok: true, ...r });
    });
  app.post('/api/control/force-review', ...operator, async (c) => {
    const b = await body(c, bodies.review);
    const r = await requestReview(project, scrubbed(b.reason ?? 'requested from the dashboard'));
    feed.poll(true);
    return c.json({ ok: true, ...r, message: 'The agent is told to verify and convene the council on its next turn.' });
  });
  app.post('/api/checklist/:id/waive', ...operator, async (c) => {
    const b = await body(c, bodies.waive);
    const w = waiveItems(project, [c.req.param('id')], scrubbed(b.reason));
    feed.poll(true);
    return c.json({ ok: true, waiver: w });
  });
  app.post('/api/checkpoints/:id/rollback', ...operator, async (c) => {
    const id = c.req.param('id');
    const b = await body(c, bodies.rollback);
    if (b.confirm !== id)
      return c.json(
        { error: `confirm the rollback: send {"confirm": "${id.slice(0, 40)}"} for checkpoint ${id.slice(0, 40)}` },
        400,
      );
    const r = rollback(project, id, b.code ?? false);
    feed.poll(true);
    return c.json({ ok: true, rollback: r });
  });

  app.notFound((c) =>
    c.json({ error: `no such endpoint: ${c.req.method} ${c.req.path} (docs/api.md lists them)` }, 404),
  );
  app.onError((err, c) => {
    if (err instanceof BadRequest) return c.json({ error: err.message }, 400);
    // What the person must mend (config.yaml, the database) is not the request's fault: `loki doctor` says more.
    if (err instanceof ConfigError || err instanceof StoreError) return c.json({ error: err.message }, 503);
    if (isExpectedError(err)) return c.json({ error: err.message }, 409);
    log.error('dashboard:', err);
    return c.json({ error: 'internal error: the dashboard logged it on its terminal' }, 500);
  });
  return app;
}

class BadRequest extends Error {}

/** Two changes as one message: the later stamp, and the latest events of both. */
function merged(a: Change, b: Change): Change {
  return { stamp: b.stamp, head: b.head, events: [...a.events, ...b.events].slice(-FEED_EVENTS) };
}

/** Refuses a request whose Host is not this dashboard, or whose Origin is another site. */
function hostAndOrigin(hosts: ReadonlySet<string>): MiddlewareHandler {
  return async (c, next) => {
    const host = (c.req.header('host') ?? '').toLowerCase();
    if (!hosts.has(host))
      return c.json(
        { error: `Host "${host.slice(0, 100)}" is not this dashboard's: open it by the address it printed` },
        403,
      );
    const origin = c.req.header('origin');
    if (origin !== undefined && origin !== 'null') {
      let ok = false;
      try {
        ok = new URL(origin).host.toLowerCase() === host;
      } catch {
        ok = false;
      }
      if (!ok) return c.json({ error: `requests from ${origin.slice(0, 100)} are refused` }, 403);
    } else if (origin === 'null') {
      return c.json({ error: 'requests from an opaque origin are refused' }, 403);
    }
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      return c.json({ error: `cross-site requests are refused (${site.slice(0, 40)})` }, 403);
    await next();
  };
}

function requireScope(tokens: Tokens, needed: Scope): MiddlewareHandler<Env> {
  return async (c, next) => {
    const scope = scopeOf(tokens, c.req.header('authorization'));
    if (!scope) {
      c.header('WWW-Authenticate', 'Bearer realm="loki dashboard"');
      return c.json(
        { error: 'a token is required: the URL `loki dashboard` printed carries it (Authorization: Bearer TOKEN)' },
        401,
      );
    }
    if (needed === 'operator' && scope !== 'operator')
      return c.json({ error: 'this token is read-only: controls need the operator token' }, 403);
    c.set('scope', scope);
    await next();
  };
}

async function body<T>(c: Context, schema: z.ZodMiniType<T>): Promise<T> {
  if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('application/json'))
    throw new BadRequest('send the body as JSON (Content-Type: application/json)');
  let raw: unknown;
  try {
    const text = await c.req.text();
    raw = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new BadRequest('the body is not valid JSON');
  }
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new BadRequest(
      `the body does not fit: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}

function stateFilter(raw: string | undefined): TaskState[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  const states = raw.split(',');
  const bad = states.find((s) => !(TASK_STATES as readonly string[]).includes(s));
  if (bad !== undefined)
    throw new BadRequest(`status: "${bad.slice(0, 40)}" is not a task state (${TASK_STATES.join(', ')})`);
  return states as TaskState[];
}

function int(raw: string | undefined, fallback: number, name: string, max = 1_000_000_000): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > max) throw new BadRequest(`${name}: a whole number from 0 to ${max}`);
  return Number(raw);
}

/** A person's reason is stored (records, audit): scrubbed of secrets first, as the CLI scrubs its --reason. */
function scrubbed(text: string): string {
  return scrubInput(text, new Set()).value;
}
