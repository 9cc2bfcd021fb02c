/**
 * Effective configuration: defaults, then `.loki/config.yaml`, then `LOKI_*` environment variables.
 * Every value remembers where it came from. Problems are collected with a message naming the fix.
 */
import { parseYaml } from '../domain/yaml.js';
import { SETTINGS, SETTINGS_BY_KEY, type Setting, type SettingValue } from './settings.js';

export const CONFIG_FILE = 'config.yaml';

export type Source = 'default' | '.loki/config.yaml' | `env ${string}`;

export interface EffectiveConfig {
  values: ReadonlyMap<string, SettingValue>;
  sources: ReadonlyMap<string, Source>;
  problems: string[];
}

/** Build the effective configuration from the text of config.yaml (or undefined) and an environment. */
export function resolveConfig(yamlText: string | undefined, env: NodeJS.ProcessEnv): EffectiveConfig {
  const values = new Map<string, SettingValue>();
  const sources = new Map<string, Source>();
  const problems: string[] = [];
  for (const s of SETTINGS) {
    values.set(s.key, s.default);
    sources.set(s.key, 'default');
  }

  if (yamlText !== undefined && yamlText.trim() !== '') {
    let doc: unknown;
    try {
      doc = parseYaml(yamlText);
    } catch (err) {
      problems.push(
        `.loki/config.yaml is not valid YAML (${(err as Error).message.split('\n')[0]}); fix the file or delete it to use defaults`,
      );
    }
    if (doc !== undefined && doc !== null) {
      for (const [key, raw] of flatten(doc, '', problems)) {
        const setting = SETTINGS_BY_KEY.get(key);
        if (!setting) {
          problems.push(`.loki/config.yaml: unknown setting "${key}"${suggest(key)}`);
          continue;
        }
        const checked = checkValue(setting, raw);
        if (typeof checked === 'object' && checked !== null && 'problem' in checked) {
          problems.push(`.loki/config.yaml: ${key} ${checked.problem}`);
          continue;
        }
        values.set(key, checked as SettingValue);
        sources.set(key, '.loki/config.yaml');
      }
    }
  }

  for (const s of SETTINGS) {
    if (!s.env) continue;
    const raw = env[s.env];
    if (raw === undefined || raw === '') continue;
    const checked = checkValue(s, parseEnv(s, raw));
    if (typeof checked === 'object' && checked !== null && 'problem' in checked) {
      problems.push(`${s.env}=${JSON.stringify(raw)}: ${s.key} ${checked.problem}; unset it or set a valid value`);
      continue;
    }
    values.set(s.key, checked as SettingValue);
    sources.set(s.key, `env ${s.env}`);
  }

  const size = values.get('council.size') as number;
  const threshold = values.get('council.threshold') as number;
  const floor = Math.max(2, Math.ceil((2 * size) / 3));
  if (threshold < floor || threshold > size) {
    problems.push(
      `council.threshold ${threshold} (from ${sources.get('council.threshold')}) must be between ${floor} and ${size} for a council of ${size}: ` +
        'the threshold may only be tightened',
    );
  }
  return { values, sources, problems };
}

function flatten(node: unknown, prefix: string, problems: string[]): [string, unknown][] {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    if (prefix === '')
      problems.push('.loki/config.yaml must be a mapping of sections (e.g. "council:" with "size: 3" under it)');
    return prefix === '' ? [] : [[prefix, node]];
  }
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !SETTINGS_BY_KEY.has(key))
      out.push(...flatten(v, key, problems));
    else out.push([key, v]);
  }
  return out;
}

function parseEnv(s: Setting, raw: string): unknown {
  const text = raw.trim();
  switch (s.type) {
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      return raw;
    case 'integer':
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : raw;
    case 'list':
      return text
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
    default:
      return text;
  }
}

function checkValue(s: Setting, v: unknown): SettingValue | { problem: string } {
  if (v === null) return s.nullable ? null : { problem: 'may not be empty' };
  switch (s.type) {
    case 'boolean':
      return typeof v === 'boolean' ? v : { problem: `must be true or false, got ${JSON.stringify(v)}` };
    case 'integer':
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v))
        return { problem: `must be a number, got ${JSON.stringify(v)}` };
      if (s.type === 'integer' && !Number.isInteger(v)) return { problem: `must be a whole number, got ${v}` };
      if (s.min !== undefined && v < s.min) return { problem: `must be at least ${s.min}, got ${v}` };
      if (s.max !== undefined && v > s.max) return { problem: `must be at most ${s.max}, got ${v}` };
      return v;
    }
    case 'string':
      return typeof v === 'string' && v.length <= 4096 ? v : { problem: `must be a string, got ${JSON.stringify(v)}` };
    case 'enum':
      return typeof v === 'string' && s.values!.includes(v)
        ? v
        : { problem: `must be one of ${s.values!.join(', ')}, got ${JSON.stringify(v)}` };
    case 'list':
      if (Array.isArray(v) && v.every((x) => typeof x === 'string') && v.length <= 256) return v as string[];
      return { problem: `must be a list of strings, got ${JSON.stringify(v)}` };
  }
}

function suggest(key: string): string {
  const scored = SETTINGS.map((s) => ({ key: s.key, d: editDistance(s.key.toLowerCase(), key.toLowerCase()) })).sort(
    (a, b) => a.d - b.d,
  );
  const best = scored[0]!;
  return best.d <= 3 ? ` (did you mean "${best.key}"?)` : `; known settings: ${SETTINGS.map((s) => s.key).join(', ')}`;
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment): the "did you mean" of
 * settings, `LOKI_*` variables and the CLI's commands and options, where "lsit" is one slip from "list", not two.
 */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** Typed view of the settings the code reads. */
export interface LokiConfig {
  complexity: 'auto' | 'simple' | 'standard' | 'complex';
  maxIterations: number;
  maxRetries: number;
  leaseMinutes: number;
  budgetLimitUsd: number | null;
  council: {
    enabled: boolean;
    size: number;
    threshold: number;
    checkInterval: number;
    minIterations: number;
    stagnationLimit: number;
  };
  checks: { test: string | null; build: string | null; lint: string | null; timeoutSeconds: number };
  checkpointRetention: number;
  checkpointOnTask: boolean;
  checkpointTaskSpacingMs: number;
  guard: { allowedPaths: string[]; blockedCommands: string[]; stagedAutonomy: boolean };
  promptInjection: boolean;
  humanInputMaxBytes: number;
  contextWindowTokens: number;
  notify: {
    contextPct: number;
    budgetPct: number;
    taskFailures: number;
    councilRejection: boolean;
    command: string | null;
  };
}

export function typedConfig(c: EffectiveConfig): LokiConfig {
  const v = <T>(k: string) => c.values.get(k) as T;
  return {
    complexity: v('run.complexity'),
    maxIterations: v('limits.maxIterations'),
    maxRetries: v('limits.maxRetries'),
    leaseMinutes: v('tasks.leaseMinutes'),
    budgetLimitUsd: v('budget.limitUsd'),
    council: {
      enabled: v('council.enabled'),
      size: v('council.size'),
      threshold: v('council.threshold'),
      checkInterval: v('council.checkInterval'),
      minIterations: v('council.minIterations'),
      stagnationLimit: v('council.stagnationLimit'),
    },
    checks: {
      test: v('checks.test'),
      build: v('checks.build'),
      lint: v('checks.lint'),
      timeoutSeconds: v('checks.timeoutSeconds'),
    },
    checkpointRetention: v('checkpoints.retention'),
    checkpointOnTask: v('checkpoints.onTask'),
    checkpointTaskSpacingMs: v<number>('checkpoints.taskSpacingSeconds') * 1000,
    guard: {
      allowedPaths: v('guard.allowedPaths'),
      blockedCommands: v('guard.blockedCommands'),
      stagedAutonomy: v('guard.stagedAutonomy'),
    },
    promptInjection: v('signals.promptInjection'),
    humanInputMaxBytes: v('signals.humanInputMaxBytes'),
    contextWindowTokens: v('context.windowTokens'),
    notify: {
      contextPct: v('notify.contextPct'),
      budgetPct: v('notify.budgetPct'),
      taskFailures: v('notify.taskFailures'),
      councilRejection: v('notify.councilRejection'),
      command: v('notify.command'),
    },
  };
}
