/**
 * Start the dashboard: an HTTP server (HTTPS with LOKI_TLS_CERT and LOKI_TLS_KEY) on loopback by default. Binding
 * another address is allowed with a warning: the token then guards a run that anyone who can reach the port may
 * try, and without TLS it crosses the network in clear text.
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import type { Project } from '../project.js';
import { UsageError } from '../errors.js';
import { dashboardApp } from './app.js';
import { loadAssets } from './assets.js';
import { loadTokens, type Tokens } from './auth.js';
import { ChangeFeed } from './events.js';

export const DEFAULT_PORT = 57374;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface DashboardOptions {
  project: Project;
  env: NodeJS.ProcessEnv;
  port?: number;
  host?: string;
  /** Where the change feed looks for news, in ms (tests make it quicker). */
  pollMs?: number;
  keepAliveSeconds?: number;
  /** Warnings for the person (binding beyond loopback, no TLS). */
  warn?: (message: string) => void;
}

export interface Dashboard {
  url: string;
  /** The URL with the operator token in its fragment (never sent to the server, so never in a log). */
  openUrl: string;
  tokens: Tokens;
  tls: boolean;
  feed: ChangeFeed;
  close(): Promise<void>;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const host = o.host ?? '127.0.0.1';
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: ${port} is not a TCP port`);
  const tokens = loadTokens(o.project.lokiHome, o.env);
  const tls = tlsOptions(o.env);
  if (!LOOPBACK.has(host)) {
    o.warn?.(
      `serving on ${host}, beyond this machine: anyone who can reach port ${port} and holds the token can steer the run`,
    );
    if (!tls) o.warn?.('without TLS the token crosses the network in clear text: set LOKI_TLS_CERT and LOKI_TLS_KEY');
  }
  const hosts = new Set<string>();
  const feed = new ChangeFeed(o.project, o.pollMs);
  const app = dashboardApp({
    project: o.project,
    tokens,
    feed,
    assets: loadAssets(),
    hosts,
    ...(o.keepAliveSeconds !== undefined ? { keepAliveSeconds: o.keepAliveSeconds } : {}),
  });
  const server: ServerType = tls
    ? createAdaptorServer({ fetch: app.fetch, createServer: https.createServer, serverOptions: tls })
    : createAdaptorServer({ fetch: app.fetch });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new UsageError(`port ${port} on ${host} is in use: pick another with --port`)
          : err.code === 'EADDRNOTAVAIL'
            ? new UsageError(`${host} is not an address of this machine: pick another with --host`)
            : err,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  for (const name of hostNames(host)) hosts.add(`${name}:${bound}`.toLowerCase());
  const scheme = tls ? 'https' : 'http';
  const shown = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `${scheme}://${shown}:${bound}/`;
  return {
    url,
    openUrl: `${url}#token=${tokens.operator}`,
    tokens,
    tls: Boolean(tls),
    feed,
    close: () =>
      new Promise<void>((resolve) => {
        feed.close();
        server.close(() => resolve());
        // Event streams stay open until their browser goes: end them, so close returns.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** The names a browser may use for this dashboard, as its Host header carries them (without the port). */
function hostNames(host: string): string[] {
  const names = new Set<string>(['127.0.0.1', 'localhost', '[::1]']);
  const wildcard = host === '0.0.0.0' || host === '::';
  if (!LOOPBACK.has(host)) names.add(host.includes(':') ? `[${host}]` : host);
  if (wildcard) {
    names.add(os.hostname());
    for (const list of Object.values(os.networkInterfaces()))
      for (const a of list ?? []) names.add(a.family === 'IPv6' ? `[${a.address}]` : a.address);
  }
  return [...names];
}

function tlsOptions(env: NodeJS.ProcessEnv): { cert: Buffer; key: Buffer } | undefined {
  const cert = env.LOKI_TLS_CERT?.trim();
  const key = env.LOKI_TLS_KEY?.trim();
  if (!cert && !key) return undefined;
  if (!cert || !key) throw new UsageError('TLS needs both LOKI_TLS_CERT and LOKI_TLS_KEY (PEM files)');
  const read = (file: string, name: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new UsageError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return { cert: read(cert, 'LOKI_TLS_CERT'), key: read(key, 'LOKI_TLS_KEY') };
}
