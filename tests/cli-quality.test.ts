/**
 * The `loki` command's rough edges (issue 20, CLI quality), spawned from dist: per-command help, "did you mean",
 * colour only where a person sees it, no stack on a closed pipe, `loki checkpoint list|create|show`,
 * `loki version`, `loki config` on unknown LOKI_* variables, and messages that name CLI commands, not MCP tools.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HELP } from '../mcp-server/src/cli/main.js';
import { KNOWN_ENV } from '../mcp-server/src/config/env-names.js';
import { DIST, tempProject, type TempProject } from './helpers.js';

const CLI = path.join(DIST, 'loki.js');
const REPO = path.join(import.meta.dirname, '..');
// Escape codes: what colour looks like in the output.
const ESC = '\u001b[';

let p: TempProject;
afterEach(() => p?.cleanup());

/** The environment of a run: the colour variables only where a test sets them. */
function envOf(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...p.env };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  return { ...env, ...extra };
}

function loki(args: string[], extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: p.root, env: envOf(extra), encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `loki ARGS` on a pseudo-terminal (util-linux `script`), as a person at a terminal runs it. */
function onTerminal(args: string[], extra: NodeJS.ProcessEnv = {}) {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {
    cwd: p.root,
    env: { ...envOf(extra), TERM: 'xterm' },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout };
}
const hasScript = spawnSync('script', ['--version']).status === 0;

const checkpointCount = () =>
  fs.existsSync(path.join(p.root, '.loki'))
    ? (JSON.parse(loki(['checkpoint', 'list', '--json']).out) as { checkpoints: unknown[] }).checkpoints.length
    : 0;

describe('loki: help and suggestions', () => {
  it('--help after a command, and `loki help COMMAND`, print that command alone', () => {
    p = tempProject();
    for (const args of [
      ['checkpoint', '--help'],
      ['checkpoint', 'list', '-h'],
      ['help', 'checkpoint'],
    ]) {
      const r = loki(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).not.toBe(HELP);
      expect(r.out).toMatch(/^Usage:\n {2}checkpoint create \[label\]/);
      expect(r.out).toMatch(/checkpoint show <id>/);
      expect(r.out).not.toMatch(/rollback to|council|memory/);
    }
    expect(loki(['rollback', 'to', '--help']).out).toMatch(/^Usage:\n {2}rollback list/);
    expect(loki(['help']).out).toBe(HELP);
    const unknown = loki(['help', 'rolback']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/unknown command "rolback" \(did you mean "rollback"\?\)/);
  });

  it('suggests the command or option meant, and refuses an option its command does not take', () => {
    p = tempProject();
    const command = loki(['stauts']);
    expect(command.code).toBe(2);
    expect(command.err).toMatch(/unknown command "stauts" \(did you mean "status"\?\)/);
    // Nothing close: no guess.
    expect(loki(['frobnicate']).err).not.toMatch(/did you mean/);
    const option = loki(['status', '--jsn']);
    expect(option.code).toBe(2);
    expect(option.err).toMatch(/unknown option --jsn \(did you mean --json\?\); run `loki status --help`/);
    expect(loki(['rollback', 'latest', '--cod']).err).toMatch(/did you mean --code\?/);
    const stray = loki(['status', '--fix']);
    expect(stray.code).toBe(2);
    expect(stray.err).toMatch(/loki status takes no --fix option/);
    for (const [args, meant] of [
      [['rollback', 'lsit'], 'loki rollback list'],
      [['tasks', 'shwo', 't1'], 'loki tasks show'],
      [['memory', 'serch', 'x'], 'loki memory search'],
      [['install', 'claud'], 'loki install claude'],
      [['audit', 'verfy'], 'loki audit verify'],
    ] as const) {
      const r = loki([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/^loki: usage: /);
      expect(r.err).toContain(`(did you mean \`${meant}\`?)`);
    }
  });

  it('`loki version` prints the version', () => {
    p = tempProject();
    const r = loki(['version']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(loki(['--version']).out.trim());
    expect(r.out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(HELP).toMatch(/^ {2}version /m);
  });
});

describe('loki: output', () => {
  it('colours only on a terminal, never with NO_COLOR; FORCE_COLOR asks for it in a pipe', () => {
    p = tempProject();
    const piped = loki(['doctor']);
    expect(piped.out).toMatch(/^ok\s+node/m);
    expect(piped.out).not.toContain(ESC);
    expect(loki(['doctor'], { FORCE_COLOR: '1' }).out).toContain(`${ESC}32mok`);
    expect(loki(['doctor'], { FORCE_COLOR: '1', NO_COLOR: '1' }).out).not.toContain(ESC);
    expect(loki(['stauts'], { FORCE_COLOR: '1' }).err).toContain(`${ESC}31mloki:`);
    expect(loki(['stauts']).err).toMatch(/^loki: /);
    if (!hasScript) return;
    expect(onTerminal(['doctor']).out).toContain(`${ESC}32mok`);
    const plain = onTerminal(['doctor'], { NO_COLOR: '1' });
    expect(plain.out).toMatch(/ok\s+node/);
    expect(plain.out).not.toContain(ESC);
  });

  it('a reader that closes the pipe early (`loki rollback list | head`) gets no EPIPE stack', async () => {
    p = tempProject({ git: true });
    expect(loki(['checkpoint', 'create', 'one']).code).toBe(0);
    for (const args of [['rollback', 'list'], ['checkpoint', 'list', '--json'], ['--help']]) {
      const child = spawn(process.execPath, [CLI, ...args], {
        cwd: p.root,
        env: envOf(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Close the reading end before the command writes: every write it makes meets EPIPE.
      child.stdout.destroy();
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(err, args.join(' ')).toBe('');
      expect(code, args.join(' ')).toBe(0);
    }
  });
});

describe('loki: progress', () => {
  it('a rollback or a checkpoint says what it is doing on a terminal, and nothing extra in a pipe', () => {
    p = tempProject({ git: true });
    const piped = loki(['checkpoint', 'create', 'one']);
    expect(piped.err).toBe('');
    const rolled = loki(['rollback', 'latest', '--code']);
    expect(rolled.code, rolled.err).toBe(0);
    expect(rolled.err).toBe('');
    if (!hasScript) return;
    const made = onTerminal(['checkpoint', 'create', 'two']);
    // The line, then a carriage return and erase-line before the result: gone from the screen once done.
    const cleared = made.out.indexOf(`\r${ESC}K`);
    expect(made.out.indexOf('Taking a checkpoint...')).toBeGreaterThanOrEqual(0);
    expect(cleared).toBeGreaterThan(made.out.indexOf('Taking a checkpoint...'));
    expect(made.out.slice(cleared)).toMatch(/Checkpoint cp-\d+ "two"/);
    const back = onTerminal(['rollback', 'latest', '--code']);
    expect(back.code).toBe(0);
    expect(back.out).toMatch(/Rolling back to the latest checkpoint, files and state\.\.\..*Rolled back to cp-\d+/s);
  });
});

describe('loki checkpoint list|create|show', () => {
  it('list and show read, create writes, and a mistyped subcommand creates nothing', () => {
    p = tempProject({ git: true });
    // `loki checkpoint list` used to take a checkpoint named "list", which `rollback latest` then restored.
    const empty = loki(['checkpoint', 'list']);
    expect(empty.code).toBe(0);
    expect(empty.out).toMatch(/No checkpoints yet \(`loki checkpoint create \[label\]` takes one\)/);
    expect(fs.existsSync(path.join(p.root, '.loki'))).toBe(false);
    const made = loki(['checkpoint', 'create', 'before the refactor']);
    expect(made.code, made.err).toBe(0);
    expect(made.out).toMatch(/Checkpoint cp-1 "before the refactor" \(code\+state\)/);
    const listed = loki(['checkpoint', 'list']);
    expect(listed.out).toMatch(/cp-1\*\s+manual .*code\+state\s+before the refactor/);
    expect(loki(['checkpoint', 'list', '--json']).out).toBe(loki(['rollback', 'list', '--json']).out);
    expect(checkpointCount()).toBe(1);

    const shown = loki(['checkpoint', 'show', 'cp-1']);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/checkpoint\s+cp-1 \(what `loki rollback latest` restores\)/);
    expect(shown.out).toMatch(/label\s+before the refactor/);
    expect(shown.out).toMatch(/code\s+commit [0-9a-f]{12} \(branch main/);
    expect(shown.out).toMatch(/restore\s+loki rollback to cp-1 --code/);
    const json = JSON.parse(loki(['checkpoint', 'show', 'cp-1', '--json']).out);
    expect(json).toMatchObject({ id: 'cp-1', label: 'before the refactor', latest: true, kind: 'manual' });
    const missing = loki(['checkpoint', 'show', 'cp-9']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no checkpoint "cp-9": `loki checkpoint list` shows the ids/);
    expect(loki(['checkpoint', 'show']).code).toBe(2);

    for (const typo of ['lsit', 'shwo', 'craete']) {
      const r = loki(['checkpoint', typo]);
      expect(r.code, typo).toBe(2);
      expect(r.err).toMatch(/did you mean `loki checkpoint (list|show|create)`\? Nothing was created/);
    }
    expect(checkpointCount()).toBe(1);
    // The shorthand with a label of its own still takes one.
    expect(loki(['checkpoint', 'nightly']).out).toMatch(/Checkpoint cp-2 "nightly"/);
    expect(loki(['checkpoint', 'create', 'a', 'b']).code).toBe(2);
  });
});

describe('loki config: unknown LOKI_* variables', () => {
  it('names a misspelled variable with the one meant and exits 1; known variables pass', () => {
    p = tempProject();
    const clean = loki(['config'], { LOKI_LOG_LEVEL: 'warn', LOKI_COUNCIL_ENABLED: 'false' });
    expect(clean.code, clean.out).toBe(0);
    expect(clean.out).not.toMatch(/Unknown/);
    const typo = loki(['config'], { LOKI_COUNCIL_SZE: '4' });
    expect(typo.code).toBe(1);
    expect(typo.out).toMatch(
      /Unknown: LOKI_COUNCIL_SZE is not a variable loki reads: did you mean LOKI_COUNCIL_SIZE\? \(it has no effect; unset it or rename it to LOKI_COUNCIL_SIZE\)/,
    );
    const json = JSON.parse(loki(['config', '--json'], { LOKI_WHATEVER_THIS_IS: '1' }).out);
    expect(json.unknownEnv).toEqual([expect.objectContaining({ name: 'LOKI_WHATEVER_THIS_IS', suggestion: null })]);
    expect(loki(['config', '--json'], { LOKI_WHATEVER_THIS_IS: '1' }).code).toBe(1);
    // `loki doctor` warns of it too, without failing: the run itself is sound.
    const doctor = loki(['doctor'], { LOKI_COUNCIL_SZE: '4' });
    expect(doctor.out).toMatch(
      /warn\s+environment\s+LOKI_COUNCIL_SZE is not a variable loki reads \(did you mean LOKI_COUNCIL_SIZE\?\)/,
    );
  });

  it('the allow-list holds every LOKI_* variable the code reads and the docs name', () => {
    const read = new Set<string>();
    const walk = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
    for (const file of [
      ...walk(path.join(REPO, 'mcp-server/src')),
      ...walk(path.join(REPO, 'plugin')),
      ...walk(path.join(REPO, 'scripts')),
    ]) {
      if (!/\.(ts|mjs|cjs|js)$/.test(file)) continue;
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\benv(?:\.|\[\s*['"])(LOKI_[A-Z0-9_]+)/g)) read.add(m[1]!);
      for (const m of text.matchAll(/\benv: '(LOKI_[A-Z0-9_]+)'/g)) read.add(m[1]!);
    }
    for (const doc of ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).map((f) => `docs/${f}`)]) {
      if (!doc.endsWith('.md')) continue;
      for (const m of fs.readFileSync(path.join(REPO, doc), 'utf8').matchAll(/\b(LOKI_[A-Z0-9]+(?:_[A-Z0-9]+)*)\b/g))
        read.add(m[1]!);
    }
    expect(read.size).toBeGreaterThan(20);
    // The docs' own example of a typo is the one name that must stay unknown.
    expect(KNOWN_ENV).not.toContain('LOKI_COUNCIL_SZE');
    read.delete('LOKI_COUNCIL_SZE');
    expect([...read].filter((name) => !KNOWN_ENV.includes(name))).toEqual([]);
  });
});

describe('loki: messages name CLI commands', () => {
  it('errors from the services say the command a person runs, not the MCP tool', () => {
    p = tempProject({ git: true });
    const none = loki(['rollback', 'latest']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/create one with `loki checkpoint create`/);
    loki(['checkpoint', 'create', 'one']);
    const bad = loki(['rollback', 'to', 'cp-77']);
    expect(bad.err).toMatch(/no checkpoint "cp-77": `loki checkpoint list` shows the ids/);
    const waive = loki(['waive', 'list']);
    expect(waive.err).toMatch(/no run yet in this project \(start one from your agent/);
    const task = loki(['tasks', 'show', 'nope']);
    expect(task.err).toMatch(/no task "nope".*`loki tasks`/);
    expect(loki(['tasks']).out).toMatch(/No tasks yet/);
    for (const r of [none, bad, waive, task, loki(['tasks']), loki(['status']), loki(['proof', 'show'])])
      expect(`${r.out}${r.err}`).not.toMatch(/\bloki_[a-z]/);
  });
});
