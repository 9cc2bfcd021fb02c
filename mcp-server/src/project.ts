/**
 * The project a server or a CLI invocation works on: where its root is, where `~/.loki` is, and the lazily
 * opened `.loki/` store. Nothing here scans or writes until a tool needs it, so `initialize` stays fast.
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveConfig, typedConfig, CONFIG_FILE, type EffectiveConfig, type LokiConfig } from './config/load.js';
import { Store } from './store/store.js';
import { scrubStoredData } from './domain/secrets.js';
import { TaskQueue } from './queue/queue.js';
import { RUN_FILE, RUN_RECORD } from './run/records.js';
import { lokiHomeDir } from './home.js';
import { readFileIfExists } from './store/fsx.js';
import { SafeDir } from './store/paths.js';
import { deepFreeze } from './store/records.js';
import { ConfigError } from './errors.js';

export { resolveProjectRoot, type RootSource } from './root.js';

export { lokiHomeDir };

export interface ProjectOptions {
  root: string;
  env?: NodeJS.ProcessEnv;
  /** Who writes audit entries: "mcp:<pid>", "cli:<pid>", "hook:<pid>". */
  actor: string;
}

export class Project {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  readonly actor: string;
  private store: Store | undefined;
  private taskQueue: TaskQueue | undefined;
  private configCache: { key: string; config: EffectiveConfig } | undefined;
  private lokiDir: SafeDir | undefined;
  private typed: { from: EffectiveConfig; config: LokiConfig } | undefined;

  constructor(opts: ProjectOptions) {
    this.root = opts.root;
    this.env = opts.env ?? process.env;
    this.actor = opts.actor;
  }

  get lokiHome(): string {
    return lokiHomeDir(this.env);
  }

  /** True when `.loki/` exists (it may still be empty). */
  hasStore(): boolean {
    try {
      return fs.lstatSync(path.join(this.root, '.loki')).isDirectory();
    } catch {
      return false;
    }
  }

  /** The `.loki/` store; created on first use by a mutation. */
  openStore(): Store {
    if (!this.store) this.store = Store.open(this.root, this.lokiHome, this.actor, scrubStoredData);
    return this.store;
  }

  /** The store if `.loki/` already exists, without creating anything. */
  existingStore(): Store | undefined {
    if (this.store) return this.store;
    return this.hasStore() ? this.openStore() : undefined;
  }

  /** The task queue of this project. */
  tasks(): TaskQueue {
    if (!this.taskQueue) {
      const store = this.openStore();
      this.taskQueue = new TaskQueue(
        store,
        () => this.config(),
        () => store.records.read(RUN_FILE, RUN_RECORD),
      );
    }
    return this.taskQueue;
  }

  /** Effective configuration, re-read only when config.yaml changes. */
  effectiveConfig(): EffectiveConfig {
    // config.yaml is a file people write: reading it needs `.loki/`, never the database (which may be damaged).
    const loki = this.hasStore() ? (this.lokiDir ??= SafeDir.open(this.root).child('.loki', false)) : undefined;
    let text: string | undefined;
    let key = 'none';
    if (loki) {
      const file = path.join(loki.root, CONFIG_FILE);
      try {
        // Asked on every tool call; usually there is no config.yaml, and an exception per call is not free.
        const st = fs.lstatSync(file, { throwIfNoEntry: false });
        key = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'missing';
      } catch {
        key = 'missing';
      }
      if (this.configCache?.key === key) return this.configCache.config;
      if (key !== 'missing') text = readFileIfExists(loki, CONFIG_FILE, 1024 * 1024)?.toString('utf8');
    } else if (this.configCache?.key === key) {
      return this.configCache.config;
    }
    const config = resolveConfig(text, this.env);
    this.configCache = { key, config };
    return config;
  }

  /** The typed configuration; throws ConfigError (naming each problem and its fix) when it is invalid. */
  config(): LokiConfig {
    const c = this.effectiveConfig();
    if (c.problems.length > 0) throw new ConfigError(c.problems);
    // Shared between calls until the configuration changes, so frozen: nobody can change it for the others.
    if (this.typed?.from !== c) this.typed = { from: c, config: deepFreeze(typedConfig(c)) };
    return this.typed.config;
  }

  close(): void {
    this.taskQueue = undefined;
    this.store?.close();
    this.store = undefined;
  }
}
