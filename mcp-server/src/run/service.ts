/**
 * Run-state operations shared by the MCP tools and the `loki` command: start or resume a run, the per-turn
 * briefing, phase transitions, sessions and signals. Decisions come from the pure domain modules; this file
 * gathers facts and writes records.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { classifyComplexity, specSignals, type RepoSignals } from '../domain/complexity.js';
import { PHASE_PURPOSE, TIER_PHASES, planTransition, nextPhase, type Phase, type PhaseFacts, type Tier } from '../domain/phases.js';
import type { Project } from '../project.js';
import { listNames, readFileIfExists, writeFileAtomic } from '../store/fsx.js';
import { PathError, printable, splitRelativePath } from '../store/paths.js';
import type { Store } from '../store/store.js';
import { changedFilesSince, recordBaseline } from './git.js';
import {
  RUN_FILE,
  RUN_RECORD,
  SESSION_RECORD,
  sessionFile,
  sessionLiveness,
  type RunState,
  type SessionState,
  type SpecInfo,
} from './records.js';
import { HUMAN_INPUT, type HumanInput, readMarkers, takeHumanInput } from './signals.js';

export const MAX_SPEC_BYTES = 1024 * 1024;
const HEARTBEAT_EVERY_MS = 30_000;
const MAX_PHASE_HISTORY = 200;

/** A user-facing refusal: the message says what to do instead. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Identity of the agent session served by this process. */
export interface SessionIdentity {
  id: string;
  client: { name: string; version: string } | null;
  provider: string;
}

export function newSessionIdentity(client: { name: string; version: string } | null): SessionIdentity {
  return { id: `s-${crypto.randomBytes(6).toString('hex')}`, client, provider: providerFromClient(client?.name) };
}

export function providerFromClient(name: string | undefined): string {
  const n = (name ?? '').toLowerCase();
  if (n.includes('claude')) return 'claude-code';
  if (n.includes('codex')) return 'codex';
  if (n.includes('cline')) return 'cline';
  return n === '' ? 'unknown' : n.replace(/[^a-z0-9._-]/g, '-').slice(0, 40);
}

export function readRun(store: Store | undefined): RunState | undefined {
  return store?.records.read(RUN_FILE, RUN_RECORD);
}

// ---------------------------------------------------------------------------------------------------------
// Start / resume

export interface StartArgs {
  spec?: string | undefined;
  specText?: string | undefined;
  tier?: Tier | undefined;
  restart?: boolean | undefined;
}

export interface StartResult {
  resumed: boolean;
  run: RunState;
  archivedRunId: string | null;
  session: SessionState;
}

export async function startRun(project: Project, args: StartArgs, who: SessionIdentity): Promise<StartResult> {
  if (args.spec !== undefined && args.specText !== undefined) {
    throw new UsageError('give either `spec` (a path inside the project) or `specText`, not both');
  }
  const config = project.config();
  const store = project.openStore();
  if (readMarkers(store).stop) {
    throw new UsageError('.loki/STOP is present: the user asked the run to stop. Run `loki resume` (or delete .loki/STOP) before starting again');
  }
  // Read the spec before taking the lock: it is validated input, not state.
  const specInput = args.spec !== undefined ? readSpecFile(store, args.spec) : args.specText !== undefined ? specFromText(args.specText) : undefined;

  return store.mutate(
    'state',
    () => {
      const existing = readRun(store);
      const resumable = existing && existing.status !== 'completed' && !args.restart;
      if (existing && resumable) {
        if (specInput && existing.spec && specInput.sha256 !== existing.spec.sha256) {
          throw new UsageError(
            `a run (${existing.runId}) is already in progress with a different spec; omit \`spec\` to resume it, ` +
              'or pass `restart: true` to archive it and start a new run',
          );
        }
        const now = new Date().toISOString();
        const run: RunState = existing.status === 'stopped' ? { ...existing, status: 'active', stoppedAt: null, stopReason: null, updatedAt: now } : existing;
        if (run !== existing) store.records.write(RUN_FILE, RUN_RECORD, run);
        const session = writeSession(store, run.runId, who, now);
        return { resumed: true, run, archivedRunId: null, session };
      }
      if (!specInput) {
        throw new UsageError(
          existing
            ? `the last run (${existing.runId}) is ${existing.status}; give \`spec\` or \`specText\` to start a new one`
            : 'no run yet: give `spec` (a path inside the project, e.g. "docs/prd.md") or `specText` (the brief itself)',
        );
      }
      let archivedRunId: string | null = null;
      if (existing) {
        const archived: RunState =
          existing.status === 'active' ? { ...existing, status: 'stopped', stoppedAt: new Date().toISOString(), stopReason: 'restarted' } : existing;
        store.records.write(`runs/${existing.runId}.json`, RUN_RECORD, archived);
        archivedRunId = existing.runId;
      }
      const now = new Date();
      const runId = `r-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${crypto.randomBytes(4).toString('hex')}`;
      const copy = `spec/${runId}${specInput.extension}`;
      writeFileAtomic(store.loki, copy, specInput.text);
      const spec: SpecInfo = { source: specInput.source, path: specInput.path, copy, sha256: specInput.sha256, bytes: specInput.bytes, title: specInput.title };
      const tier = decideTier(args.tier, config.complexity, specInput.text, project.root);
      const iso = now.toISOString();
      const run: RunState = {
        runId,
        status: 'active',
        startedAt: iso,
        updatedAt: iso,
        stoppedAt: null,
        stopReason: null,
        spec,
        tier: tier.tier,
        tierSource: tier.source,
        tierReasons: tier.reasons,
        phase: 'BOOTSTRAP',
        phaseEnteredAt: iso,
        phaseHistory: [],
        iteration: 0,
        git: recordBaseline(project.root, runId),
      };
      store.records.write(RUN_FILE, RUN_RECORD, run);
      const session = writeSession(store, runId, who, iso);
      return { resumed: false, run, archivedRunId, session };
    },
    (r) => ({
      action: r.resumed ? 'run.resume' : 'run.start',
      target: r.run.runId,
      data: r.resumed
        ? { session: r.session.id }
        : { session: r.session.id, tier: r.run.tier, spec: r.run.spec && { source: r.run.spec.source, path: r.run.spec.path, sha256: r.run.spec.sha256 }, baseline: r.run.git.baselineCommit, archived: r.archivedRunId },
    }),
  );
}

interface SpecInput {
  source: 'file' | 'text';
  path: string | null;
  text: string;
  sha256: string;
  bytes: number;
  title: string | null;
  extension: string;
}

function readSpecFile(store: Store, rel: string): SpecInput {
  const parts = splitRelativePath(rel, 'spec');
  if (parts[0]!.toLowerCase() === '.loki' || parts[0]!.toLowerCase() === '.git') {
    throw new PathError('PATH_OUTSIDE', `spec "${printable(rel)}" is inside ${parts[0]}/, which holds state, not specs: give the spec's own path`);
  }
  let buf: Buffer | undefined;
  try {
    buf = readFileIfExists(store.project, rel, MAX_SPEC_BYTES);
  } catch (err) {
    if (err instanceof Error && err.name === 'FileTooLargeError') {
      throw new UsageError(`spec "${printable(rel)}" is larger than ${MAX_SPEC_BYTES} bytes; point at the main document or pass a summary as specText`);
    }
    throw err;
  }
  if (!buf) throw new UsageError(`spec "${printable(rel)}" does not exist under the project root ${store.project.root}; give a path relative to it`);
  const text = buf.toString('utf8');
  if (text.includes('\uFFFD') || text.includes('\0')) throw new UsageError(`spec "${printable(rel)}" is not UTF-8 text`);
  if (text.trim() === '') throw new UsageError(`spec "${printable(rel)}" is empty`);
  const ext = path.extname(rel).toLowerCase();
  return {
    source: 'file',
    path: rel,
    text,
    sha256: sha256(text),
    bytes: buf.length,
    title: specTitle(text),
    extension: ['.md', '.markdown', '.json', '.yaml', '.yml', '.txt'].includes(ext) ? ext : '.txt',
  };
}

function specFromText(text: string): SpecInput {
  if (text.trim() === '') throw new UsageError('`specText` is empty: give the brief itself, or `spec` with a path');
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SPEC_BYTES) throw new UsageError(`\`specText\` is larger than ${MAX_SPEC_BYTES} bytes; write it to a file and pass \`spec\``);
  const trimmed = text.trimStart();
  const extension = trimmed.startsWith('{') ? '.json' : /^(openapi|swagger)\s*:/m.test(trimmed) ? '.yaml' : '.md';
  return { source: 'text', path: null, text, sha256: sha256(text), bytes, title: specTitle(text), extension };
}

export function specTitle(text: string): string | null {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) {
    try {
      const doc = JSON.parse(trimmed) as { title?: unknown; name?: unknown; info?: { title?: unknown } };
      const t = doc.info?.title ?? doc.title ?? doc.name;
      if (typeof t === 'string' && t.trim() !== '') return t.trim().slice(0, 200);
    } catch {
      /* not JSON after all */
    }
  }
  const yamlTitle = /^\s{2}title:\s*["']?(.+?)["']?\s*$/m.exec(text);
  if (/^(openapi|swagger)\s*:/m.test(text) && yamlTitle) return yamlTitle[1]!.slice(0, 200);
  const heading = /^#{1,6}\s+(.+)$/m.exec(text);
  if (heading) return heading[1]!.trim().slice(0, 200);
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
  return first ? first.trim().slice(0, 200) : null;
}

function sha256(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

function decideTier(
  argument: Tier | undefined,
  configured: 'auto' | Tier,
  specText: string,
  root: string,
): { tier: Tier; source: RunState['tierSource']; reasons: string[] } {
  if (argument) return { tier: argument, source: 'argument', reasons: ['set by the loki_start `tier` argument'] };
  if (configured !== 'auto') return { tier: configured, source: 'configured', reasons: ['set by LOKI_COMPLEXITY / run.complexity'] };
  const d = classifyComplexity(specSignals(specText), repoSignals(root));
  return { tier: d.tier, source: 'detected', reasons: d.reasons };
}

const SOURCE_EXTENSIONS = new Set(
  'ts tsx js jsx mjs cjs py rb go rs java kt swift c h cc cpp hpp cs php scala ex exs vue svelte sql sh'.split(' ').map((e) => `.${e}`),
);
const SKIPPED_DIRS = new Set(['node_modules', '.git', '.loki', 'dist', 'build', 'vendor', 'target', '.venv', 'venv', 'coverage', '.next', '__pycache__']);
const INFRA_FILES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml', 'k8s', 'kubernetes', 'helm', 'Chart.yaml', 'terraform', 'main.tf'];

/**
 * Repository signals for tier detection: a breadth-first count of source files that stops at `cap` (the tier
 * only needs to know "more than 50"), without following links, plus well-known infrastructure files at the root.
 */
export function repoSignals(root: string, cap = 200): RepoSignals {
  let sourceFiles = 0;
  const queue = [root];
  let visitedDirs = 0;
  while (queue.length > 0 && sourceFiles < cap && visitedDirs < 5_000) {
    const dir = queue.shift()!;
    visitedDirs++;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(e.name) && !e.name.startsWith('.')) queue.push(path.join(dir, e.name));
      } else if (e.isFile() && SOURCE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) {
        if (++sourceFiles >= cap) break;
      }
    }
  }
  const containerOrInfra = INFRA_FILES.filter((name) => fs.existsSync(path.join(root, name)));
  return { sourceFiles, containerOrInfra };
}

// ---------------------------------------------------------------------------------------------------------
// Sessions

function writeSession(store: Store, runId: string, who: SessionIdentity, now: string): SessionState {
  const previous = store.records.read(sessionFile(who.id), SESSION_RECORD);
  const session: SessionState = {
    id: who.id,
    runId,
    pid: process.pid,
    host: os.hostname(),
    client: who.client,
    provider: who.provider,
    startedAt: previous?.startedAt ?? now,
    updatedAt: now,
    status: 'running',
    stoppedAt: null,
    stopReason: null,
  };
  store.records.write(sessionFile(who.id), SESSION_RECORD, session);
  return session;
}

/** Mark this process's session stopped (shutdown path: synchronous, best effort, never throws). */
export function stopSessionSync(store: Store | undefined, who: SessionIdentity, reason: string): boolean {
  if (!store) return false;
  try {
    const s = store.records.read(sessionFile(who.id), SESSION_RECORD);
    if (!s || s.status === 'stopped') return false;
    const now = new Date().toISOString();
    store.records.write(sessionFile(who.id), SESSION_RECORD, { ...s, status: 'stopped', updatedAt: now, stoppedAt: now, stopReason: reason });
    return true;
  } catch {
    return false;
  }
}

export function listSessions(store: Store | undefined): SessionState[] {
  if (!store) return [];
  const out: SessionState[] = [];
  for (const name of listNames(store.loki, 'sessions')) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const s = store.records.read(`sessions/${name}`, SESSION_RECORD);
    if (s) out.push(s);
  }
  return out.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
}

// ---------------------------------------------------------------------------------------------------------
// The per-turn briefing

export interface Briefing {
  project: string;
  run: {
    runId: string;
    status: RunState['status'];
    phase: Phase;
    phases: readonly Phase[];
    nextPhase: Phase | null;
    tier: Tier;
    iteration: number;
    maxIterations: number;
    startedAt: string;
    spec: { path: string | null; title: string | null; copy: string } | null;
    baseline: string | null;
  } | null;
  session: { id: string; status: 'running' | 'stale' | 'stopped' } | null;
  signals: { pause: boolean; stop: boolean; humanInput: HumanInput };
  budget: { limitUsd: number | null; spentUsd: number | null; note: string };
  problems: string[];
  next: string;
}

export interface StatusOptions {
  /** Do not count a turn, heartbeat, or take HUMAN_INPUT (read-only look). */
  peek: boolean;
}

/** The per-turn briefing. Unless `peek`, it counts a turn, heartbeats the session and delivers HUMAN_INPUT. */
export async function briefing(project: Project, who: SessionIdentity | undefined, opts: StatusOptions): Promise<Briefing> {
  const effective = project.effectiveConfig();
  const problems = [...effective.problems];
  const config = effective.problems.length === 0 ? project.config() : undefined;
  const maxIterations = (effective.values.get('limits.maxIterations') as number) ?? 1000;
  const store = project.existingStore();
  const markers = readMarkers(store);
  let humanInput: HumanInput = { status: 'none' };
  let run = readRun(store);
  let session: Briefing['session'] = null;

  if (store && run && run.status === 'active' && !opts.peek) {
    const turn = await store.mutate(
      'state',
      () => {
        const current = readRun(store);
        if (!current || current.status !== 'active') return { run: current, changed: false as const };
        const now = new Date().toISOString();
        let next: RunState = { ...current, iteration: current.iteration + 1, updatedAt: now };
        if (markers.stop) next = { ...next, status: 'stopped', stoppedAt: now, stopReason: 'STOP signal' };
        else if (next.iteration > maxIterations) next = { ...next, status: 'stopped', stoppedAt: now, stopReason: `iteration limit (${maxIterations}) reached` };
        store.records.write(RUN_FILE, RUN_RECORD, next);
        return { run: next, changed: true as const, stopped: next.status === 'stopped' };
      },
      (r) =>
        r.changed && r.run
          ? r.run.status === 'stopped'
            ? { action: 'run.stop', target: r.run.runId, data: { reason: r.run.stopReason, iteration: r.run.iteration } }
            : { action: 'run.turn', target: r.run.runId, data: { iteration: r.run.iteration, session: who?.id ?? null } }
          : undefined,
    );
    run = turn.run;
    if (who && run) session = { id: who.id, status: heartbeat(store, run.runId, who) };
    if (config && store.exists(HUMAN_INPUT)) {
      humanInput = await store.mutate(
        'signals',
        () => takeHumanInput(store, config.promptInjection, config.humanInputMaxBytes),
        (h) => (h.status === 'delivered' || h.status === 'rejected' ? { action: `human-input.${h.status}`, data: h.status === 'delivered' ? { archivedAs: h.archivedAs, bytes: Buffer.byteLength(h.text) } : { reason: h.reason } } : undefined),
      );
    }
  } else if (store && who) {
    const s = store.records.read(sessionFile(who.id), SESSION_RECORD);
    if (s) session = { id: s.id, status: sessionLiveness(s) };
  }
  if (humanInput.status === 'none' && store && store.exists(HUMAN_INPUT) && !(config?.promptInjection ?? false)) {
    humanInput = { status: 'ignored', reason: '.loki/HUMAN_INPUT.md is present but ignored: set LOKI_PROMPT_INJECTION=true to deliver it' };
  }
  if (store) for (const q of store.records.quarantined) problems.push(`.loki/${q.file} was invalid (${q.reason}) and was moved to ${q.movedTo ? `.loki/${q.movedTo}` : 'nowhere (move failed)'}`);

  const limit = (effective.values.get('budget.limitUsd') as number | null) ?? null;
  const b: Briefing = {
    project: project.root,
    run: run
      ? {
          runId: run.runId,
          status: run.status,
          phase: run.phase,
          phases: TIER_PHASES[run.tier],
          nextPhase: nextPhase(run.tier, run.phase) ?? null,
          tier: run.tier,
          iteration: run.iteration,
          maxIterations,
          startedAt: run.startedAt,
          spec: run.spec && { path: run.spec.path, title: run.spec.title, copy: `.loki/${run.spec.copy}` },
          baseline: run.git.baselineCommit,
        }
      : null,
    session,
    signals: { ...markers, humanInput },
    budget: { limitUsd: limit, spentUsd: null, note: limit === null ? 'no budget limit set' : 'spend is measured by the Claude Code hooks from the host transcript' },
    problems,
    next: '',
  };
  b.next = nextHint(b, run);
  return b;
}

function heartbeat(store: Store, runId: string, who: SessionIdentity): 'running' {
  const existing = store.records.read(sessionFile(who.id), SESSION_RECORD);
  const now = Date.now();
  if (!existing || existing.runId !== runId || existing.status !== 'running' || now - Date.parse(existing.updatedAt) > HEARTBEAT_EVERY_MS) {
    writeSession(store, runId, who, new Date(now).toISOString());
  }
  return 'running';
}

/** One instruction for the agent's next step. Pure over the briefing. */
export function nextHint(b: Briefing, run: RunState | undefined): string {
  if (b.problems.length > 0 && b.problems.some((p) => p.startsWith('.loki/config.yaml') || p.includes('LOKI_') || p.startsWith('council.'))) {
    return `fix the configuration first: ${b.problems[0]}`;
  }
  if (!b.run || !run) return 'no run yet: call loki_start with `spec` (a path inside the project) or `specText`';
  if (b.signals.stop || b.run.status === 'stopped') {
    return `the run is stopped (${run.stopReason ?? 'STOP signal'}): finish the current edit, start nothing new, and end the session`;
  }
  if (b.signals.pause) return 'PAUSED by the user (.loki/PAUSE): do nothing; call loki_status again later, the user resumes with `loki resume`';
  if (b.run.status === 'completed') return 'the run is completed; start a new one with loki_start and a new spec';
  if (b.signals.humanInput.status === 'delivered') return 'the user sent a directive (humanInput.text): act on it first, as data from the user, then continue';
  const purpose = PHASE_PURPOSE[b.run.phase];
  const next = b.run.nextPhase;
  return `phase ${b.run.phase} (${b.run.phases.indexOf(b.run.phase) + 1}/${b.run.phases.length}): ${purpose}. ${
    next ? `When its exit criteria hold, call loki_phase_advance (next: ${next}).` : ''
  }`.trim();
}

// ---------------------------------------------------------------------------------------------------------
// Phase transitions

export interface AdvanceResult {
  ok: boolean;
  from: Phase;
  to: Phase | null;
  reasons: string[];
  run: RunState;
}

export async function advancePhase(project: Project, target: Phase | undefined, reason: string | undefined): Promise<AdvanceResult> {
  project.config();
  const store = project.existingStore();
  const before = readRun(store);
  if (!store || !before) throw new UsageError('no run yet: call loki_start first');
  if (before.status !== 'active') throw new UsageError(`the run is ${before.status}; phases change only while it is active`);
  if (readMarkers(store).pause) throw new UsageError('the run is paused (.loki/PAUSE); wait for `loki resume`');
  // Facts are gathered outside the lock (git can take a moment), then the decision is re-made under it.
  const facts = gatherFacts(project, before);
  return store.mutate(
    'state',
    (): AdvanceResult => {
      const run = readRun(store);
      if (!run || run.runId !== before.runId) throw new UsageError('the run changed while advancing; call loki_status and try again');
      const plan = planTransition(run.tier, run.phase, target, facts, reason);
      if (!plan.ok) return { ok: false, from: plan.from, to: plan.to ?? null, reasons: plan.reasons, run };
      const now = new Date().toISOString();
      const history = [...run.phaseHistory, { from: plan.from, to: plan.to, at: now, direction: plan.direction, reason: reason?.trim() || null }].slice(-MAX_PHASE_HISTORY);
      const next: RunState = { ...run, phase: plan.to, phaseEnteredAt: now, phaseHistory: history, updatedAt: now };
      store.records.write(RUN_FILE, RUN_RECORD, next);
      return { ok: true, from: plan.from, to: plan.to, reasons: [], run: next };
    },
    (r) => (r.ok ? { action: 'phase.advance', target: r.run.runId, data: { from: r.from, to: r.to, reason: reason ?? null } } : undefined),
  );
}

export function gatherFacts(project: Project, run: RunState): PhaseFacts {
  let changed: number | null = null;
  if (run.git.repository && run.git.baselineCommit && run.phase === 'DEVELOPMENT') {
    changed = changedFilesSince(project.root, run.git.baselineCommit)?.length ?? null;
  }
  return { specRecorded: run.spec !== null, gitRepository: run.git.repository, changedFilesSinceBaseline: changed, runCompleted: run.status === 'completed' };
}
