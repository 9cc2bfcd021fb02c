/**
 * loki_verify through the real protocol, on real temporary git repositories, running a real test command
 * (`node --test`), so the counts, exit codes, diffs and timeouts are the ones real processes produce.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { headline } from '../mcp-server/src/domain/evidence.js';
import { toFacts } from '../mcp-server/src/trust/facts.js';
import {
  currentCodeState,
  latestVerification,
  listVerifications,
  runVerification,
  type VerificationRecord,
} from '../mcp-server/src/verify/index.js';
import {
  auditLines,
  connect,
  dbRows,
  docOnDisk,
  git,
  structured,
  tempProject,
  text,
  type Connected,
  type TempProject,
} from './helpers.js';

interface Summary {
  id: string;
  record: string;
  codeState: string | null;
  checks: {
    name: string;
    verdict: string;
    reason: string;
    command: string | null;
    exitCode: number | null;
    tests: { passed: number; failed: number; skipped: number } | null;
  }[];
  diff: { filesChanged: number; insertions: number; deletions: number } | null;
  deletedTestFiles: { items: string[] };
  newlySkipped: { items: { file: string; markers: { marker: string; before: number; now: number }[] }[] };
  secrets: { items: { file: string; line: number; kind: string }[] };
  blocking: { items: string[]; more: number };
  gaps: string[];
}

const PKG = JSON.stringify({ name: 'demo', private: true, type: 'module', scripts: { test: 'node --test' } }, null, 2);
const ADD = 'export function add(a, b) {\n  return a + b;\n}\n';
const testFile = (body: string) =>
  `import { it } from 'node:test';\nimport assert from 'node:assert';\nimport { add } from '../src/add.js';\n${body}`;
const GREEN = testFile(
  "it('adds', () => assert.equal(add(1, 2), 3));\nit('adds zero', () => assert.equal(add(0, 2), 2));\n",
);
const RED = testFile(
  "it('adds', () => assert.equal(add(1, 2), 3));\nit('is wrong', () => assert.equal(add(1, 1), 3));\n",
);

let p: TempProject | undefined;
let c: Connected | undefined;
afterEach(async () => {
  await c?.close();
  p?.cleanup();
  c = undefined;
  p = undefined;
});

async function started(
  files: Record<string, string>,
  opts: { git?: boolean } = {},
): Promise<{ p: TempProject; c: Connected; runId: string }> {
  p = tempProject({ git: opts.git ?? true, files: { 'spec.md': '# Adder\n- add two numbers\n', ...files } });
  c = await connect(p);
  const r = structured<{ run: { runId: string } }>(await c.call('loki_start', { spec: 'spec.md' }));
  return { p, c, runId: r.run.runId };
}

function write(root: string, rel: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), content);
}

function config(root: string, yaml: string): void {
  fs.writeFileSync(path.join(root, '.loki', 'config.yaml'), yaml);
}

async function verify(
  conn: Connected,
  args: Record<string, unknown> = {},
): Promise<{ s: Summary; text: string; raw: string }> {
  const r = await conn.call('loki_verify', args);
  return { s: structured<Summary>(r), text: text(r), raw: JSON.stringify(r) };
}

const check = (s: Summary, name: string) => s.checks.find((x) => x.name === name)!;
const recordOf = (root: string, s: Summary) => docOnDisk<VerificationRecord>(root, s.record)!;

/** Everything a user's git state is: HEAD, branch, the index file's bytes, status, stash and refs outside refs/loki. */
function userGitState(root: string) {
  return {
    head: git(root, 'rev-parse', 'HEAD'),
    branch: git(root, 'symbolic-ref', 'HEAD'),
    index: crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(root, '.git', 'index')))
      .digest('hex'),
    status: git(root, 'status', '--porcelain'),
    stash: git(root, 'stash', 'list'),
    refs: git(root, 'for-each-ref', '--format=%(refname) %(objectname)')
      .split('\n')
      .filter((l) => !l.startsWith('refs/loki/')),
  };
}

describe('loki_verify on a real repository', () => {
  it('green tests with a change: pass with the real counts, diff stats, nothing blocking; the user git state untouched', async () => {
    const { p, c, runId } = await started({
      'package.json': PKG,
      'src/add.js': 'export function add(a, b) {\n  return 0;\n}\n',
    });
    write(p.root, 'src/add.js', ADD);
    write(p.root, 'test/add.test.js', GREEN);
    git(p.root, 'add', 'src/add.js'); // a staged change the verification must leave staged
    const before = userGitState(p.root);

    const { s, text: out } = await verify(c);
    expect(check(s, 'test')).toMatchObject({
      verdict: 'pass',
      command: 'npm test',
      exitCode: 0,
      tests: { passed: 2, failed: 0, skipped: 0 },
    });
    expect(check(s, 'build')).toMatchObject({ verdict: 'absent', command: null });
    expect(s.diff).toEqual({ filesChanged: 2, insertions: 6, deletions: 1 });
    expect(s.blocking.items).toEqual([]);
    expect(s.gaps).toEqual([]);
    expect(out).toMatch(/test: PASS `npm test` exit 0 in [\d.]+ s, tests 2 passed \/ 0 failed \/ 0 skipped/);
    expect(out).toMatch(/Diff since baseline: 2 file\(s\), \+6 -1/);
    expect(userGitState(p.root)).toEqual(before);

    const rec = recordOf(p.root, s);
    expect(rec).toMatchObject({ id: 'v0001', runId, only: ['build', 'test', 'lint'] });
    expect(rec.diff.files.map((f) => [f.path, f.status]).sort()).toEqual([
      ['src/add.js', 'M'],
      ['test/add.test.js', 'A'],
    ]);
    expect(rec.codeState).toMatch(/^[0-9a-f]{40}$/);
    expect(rec.codeState).toBe(currentCodeState(p.root));
    expect(rec.git).toEqual({
      repository: true,
      baselineCommit: git(p.root, 'rev-parse', `refs/loki/runs/${runId}/baseline`),
      headSha: before.head,
    });
    const audit = auditLines(p.root).filter((e) => e.action === 'verify.run');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      target: 'v0001',
      data: {
        id: 'v0001',
        runId,
        codeState: rec.codeState,
        verdicts: { build: 'absent', test: 'pass', lint: 'absent' },
        blocking: 0,
      },
    });

    // The code state moves with the code, and comes back with it.
    write(p.root, 'src/extra.js', 'export const x = 1;\n');
    expect(currentCodeState(p.root)).not.toBe(rec.codeState);
    fs.rmSync(path.join(p.root, 'src/extra.js'));
    expect(currentCodeState(p.root)).toBe(rec.codeState);
  });

  it('red tests are a fail fact with the counts and the failing output', async () => {
    const { p, c } = await started({ 'package.json': PKG, 'src/add.js': ADD });
    write(p.root, 'test/add.test.js', RED);
    const { s, text: out } = await verify(c);
    expect(check(s, 'test')).toMatchObject({
      verdict: 'fail',
      exitCode: 1,
      tests: { passed: 1, failed: 1 },
      reason: 'exited with code 1 (1 of 2 tests failed)',
    });
    expect(s.blocking.items).toEqual([
      expect.stringMatching(
        /^Tests failed: `npm test` exited with code 1 \(1 of 2 tests failed\)\. Fix the failing tests/,
      ),
    ]);
    expect(out).toMatch(/--- test output \(tail\) ---[\s\S]*is wrong/);
  });

  it('zero tests run is inconclusive and blocks; so is an empty diff', async () => {
    const { c } = await started({ 'package.json': PKG, 'src/add.js': ADD });
    const { s } = await verify(c);
    expect(check(s, 'test')).toMatchObject({
      verdict: 'inconclusive',
      exitCode: 0,
      reason: 'zero tests ran',
      tests: { passed: 0, failed: 0 },
    });
    expect(s.diff).toEqual({ filesChanged: 0, insertions: 0, deletions: 0 });
    expect(s.blocking.items).toEqual([
      expect.stringMatching(/^Zero tests ran/),
      expect.stringMatching(/^Nothing changed since the run's baseline \(empty diff/),
    ]);
  });

  it('detects a deleted test file (a renamed one is not deleted) and a newly skipped test', async () => {
    const other = testFile("it('still adds', () => assert.equal(add(2, 2), 4));\n");
    const { p, c } = await started({
      'package.json': PKG,
      'src/add.js': ADD,
      'test/add.test.js': GREEN,
      'test/other.test.js': other,
      'test/gone.test.js': other.replace('still adds', 'goes'),
    });
    fs.rmSync(path.join(p.root, 'test/gone.test.js'));
    fs.renameSync(path.join(p.root, 'test/other.test.js'), path.join(p.root, 'test/moved.test.js'));
    write(p.root, 'test/add.test.js', GREEN.replace("it('adds zero'", "it.skip('adds zero'"));
    const { s } = await verify(c);
    expect(check(s, 'test')).toMatchObject({ verdict: 'pass', tests: { passed: 2, failed: 0, skipped: 1 } });
    expect(s.deletedTestFiles.items).toEqual(['test/gone.test.js']);
    expect(s.newlySkipped.items).toEqual([
      { file: 'test/add.test.js', markers: [{ marker: '.skip', before: 0, now: 1 }] },
    ]);
    expect(s.blocking.items).toEqual([
      expect.stringMatching(
        /^Test file test\/gone\.test\.js was deleted since the baseline \(a rename .*\)\. Restore what/,
      ),
      // By id, from the runner's reports: the renamed file's test still runs, so only these two are gone.
      "2 test(s) that ran at the baseline no longer run (deleted, renamed out of the runner's glob, emptied, filtered or skipped), and fewer tests run than at the baseline (2 < 4): test/add.test.js::adds zero, test/gone.test.js::goes. Restore what was removed, then run loki_verify again; or, if removing it was right (the spec drops the feature, tests were merged or renamed), run loki_verify again with `testRemovalReason` saying why: the council judges it and the receipt shows it (with council.enabled=false no one can accept a reason, so restore them).",
      expect.stringMatching(/^test\/add\.test\.js skips more tests than at the baseline \(\.skip 0 -> 1\)/),
    ]);
    const rec = recordOf(p.root, s);
    expect(rec.testsGone).toEqual({
      ids: ['test/add.test.js::adds zero', 'test/gone.test.js::goes'],
      count: 2,
      baselineRan: 4,
      nowRan: 2,
    });
    expect(rec.checks.find((x) => x.name === 'test')!.runner).toMatchObject({
      name: 'node:test',
      resolved: 'npm test -> node --test',
      counted: 'report',
    });
    expect(rec.diff.files.find((f) => f.path === 'test/moved.test.js')).toMatchObject({
      status: 'R',
      from: 'test/other.test.js',
    });
  });

  it('finds a secret in a changed file and never stores or returns its value', async () => {
    const { p, c } = await started({
      'package.json': PKG,
      'src/add.js': ADD,
      'test/add.test.js': GREEN,
      'fixtures/old.txt': `legacy ${'AKIA'}OLDOLDOLDOLDOLD1\n`,
    });
    const key = `AKIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    write(p.root, 'src/config.js', `export const region = 'eu-west-1';\nexport const accessKey = '${key}';\n`);
    // A secret-like string that was already there at the baseline is not one the run introduced.
    fs.appendFileSync(path.join(p.root, 'fixtures/old.txt'), 'more\n');
    // A credential in a configured command is scrubbed from the record and the output too.
    const token = crypto.randomBytes(16).toString('hex');
    config(p.root, `checks:\n  build: "DEPLOY_TOKEN=${token} node -e 0"\n`);
    const { s, text: out, raw } = await verify(c);
    expect(check(s, 'build')).toMatchObject({
      verdict: 'pass',
      command: expect.stringMatching(/\[REDACTED:[\w-]+\] node -e 0$/),
    });
    expect(s.secrets.items).toEqual([{ file: 'src/config.js', line: 2, kind: 'aws-access-key' }]);
    expect(s.blocking.items).toEqual([
      expect.stringMatching(/^src\/config\.js holds what looks like a secret \(aws-access-key\) on line 2: remove it/),
    ]);
    expect(recordOf(p.root, s).secrets.preexisting).toBe(1);
    expect(out).not.toContain(key);
    expect(raw).not.toContain(key);
    const lokiFiles = fs
      .readdirSync(path.join(p.root, '.loki'), { recursive: true, encoding: 'utf8' })
      .map((f) => path.join(p.root, '.loki', f))
      .filter((f) => fs.statSync(f).isFile());
    expect(dbRows(p.root, "SELECT key FROM docs WHERE kind = 'verification'")).toHaveLength(1);
    // Every byte under .loki/, the database and its write-ahead log included, is free of both values.
    expect(lokiFiles.some((f) => f.endsWith('loki.db'))).toBe(true);
    expect(raw).not.toContain(token);
    for (const f of lokiFiles.filter((x) => !x.endsWith('config.yaml'))) {
      expect(fs.readFileSync(f, 'utf8'), f).not.toContain(key);
      expect(fs.readFileSync(f, 'utf8'), f).not.toContain(token);
    }
  });

  it('honest code naming token, tokens, password and secret is not blocked; an allowed fake key is a gap, not a block; a NUL byte hides nothing', async () => {
    const { p, c } = await started({ 'package.json': PKG, 'src/add.js': ADD, 'test/add.test.js': GREEN });
    write(
      p.root,
      'src/auth.js',
      [
        "import crypto from 'node:crypto';",
        'export function tokenize(expr) {',
        '  const tokens = expr.match(/\\d+|[+*/-]/g) ?? [];',
        "  return tokens.map((token) => ({ token, kind: /\\d/.test(token) ? 'number' : 'op' }));",
        '}',
        'export async function login(db, user, password) {',
        '  const secret = process.env.SESSION_SECRET;',
        '  const record = await db.find(user);',
        "  const token = crypto.createHmac('sha256', secret).update(record.id).digest('hex');",
        "  const passwordOk = record.password === crypto.createHash('sha256').update(password).digest('hex');",
        '  return { token, passwordOk };',
        '}',
        'export const schema = { token: String, password: String, secret: String };',
        '',
      ].join('\n'),
    );
    write(p.root, '.env.example', 'SESSION_SECRET=\nDB_PASSWORD=changeme\nAPI_TOKEN=<your-token>\n');
    write(p.root, 'config/app.yaml', 'auth:\n  secret: ${SESSION_SECRET}\n  tokens: 4096\n');
    const honest = await verify(c);
    expect(check(honest.s, 'test')).toMatchObject({ verdict: 'pass' });
    expect(honest.s.secrets.items).toEqual([]);
    expect(honest.s.blocking.items).toEqual([]);
    expect(honest.s.gaps).toEqual([]);
    expect(headline(toFacts(recordOf(p.root, honest.s)), [], 0).headline).toBe('VERIFIED');

    // A fake key the agent allows with a reason: listed for a person, not blocking.
    const fake = `AKIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    write(
      p.root,
      'test/fixtures.js',
      `// loki-allow-secret: fake key for the parser tests, not a real credential\nexport const KEY = '${fake}';\n`,
    );
    const allowed = await verify(c);
    expect(allowed.s.blocking.items).toEqual([]);
    expect(allowed.s.gaps).toEqual([
      '1 secret finding(s) were allowed by the agent with a reason: test/fixtures.js:2 (aws-access-key): fake key for the parser tests, not a real credential.',
    ]);
    const rec = recordOf(p.root, allowed.s);
    expect(rec.secrets.findings).toEqual([]);
    expect(rec.secrets.allowed).toEqual([
      {
        file: 'test/fixtures.js',
        line: 2,
        kind: 'aws-access-key',
        reason: 'fake key for the parser tests, not a real credential',
      },
    ]);
    expect(headline(toFacts(rec), [], 0).headline).toBe('VERIFIED WITH GAPS');
    expect(allowed.raw).not.toContain(fake);

    // A NUL byte does not make a source file unreadable to the scan (neither for secrets nor for skipped tests),
    // nor does a marker without a reason allow anything; a changed file the scan cannot read (a link) is a gap.
    const real = `AKIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    write(p.root, 'src/keys.js', `export const a = 1;\0\n// loki-allow-secret\nexport const KEY = '${real}';\n`);
    write(p.root, 'test/add.test.js', `// \0\n${GREEN}it.skip('adds later', () => assert.equal(add(2, 2), 4));\n`);
    fs.symlinkSync('add.js', path.join(p.root, 'src/link.js'));
    const hidden = await verify(c);
    expect(check(hidden.s, 'test')).toMatchObject({ verdict: 'pass' });
    expect(hidden.s.secrets.items).toEqual([{ file: 'src/keys.js', line: 3, kind: 'aws-access-key' }]);
    expect(hidden.s.newlySkipped.items).toEqual([
      { file: 'test/add.test.js', markers: [expect.objectContaining({ before: 0, now: 1 })] },
    ]);
    expect(hidden.s.blocking.items).toEqual([
      expect.stringMatching(/^test\/add\.test\.js skips more tests than at the baseline/),
      expect.stringMatching(/^src\/keys\.js holds what looks like a secret \(aws-access-key\) on line 3: remove it/),
    ]);
    expect(hidden.s.gaps).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^1 changed file\(s\) were not scanned for secrets \(src\/link\.js: not a file \(symbolic link\)\)/,
        ),
      ]),
    );
    expect(hidden.raw).not.toContain(real);
  });

  it('keeps every verification as its own write-once record, in order', async () => {
    const { p, c, runId } = await started({ 'package.json': PKG, 'src/add.js': ADD, 'test/add.test.js': GREEN });
    const first = (await verify(c)).s;
    const firstBody = dbRows(p.root, 'SELECT body FROM docs WHERE key = ?', first.record);
    write(p.root, 'src/add.js', `${ADD}export const two = 2;\n`);
    const second = (await verify(c)).s;
    expect([first.id, second.id]).toEqual(['v0001', 'v0002']);
    expect(
      dbRows<{ key: string }>(p.root, "SELECT key FROM docs WHERE kind = 'verification' ORDER BY key").map(
        (r) => r.key,
      ),
    ).toEqual([`verify/${runId}/v0001`, `verify/${runId}/v0002`]);
    expect(dbRows(p.root, 'SELECT body FROM docs WHERE key = ?', first.record)).toEqual(firstBody);
    expect(first.blocking.items).toEqual([expect.stringMatching(/empty diff/)]);
    expect(second.blocking.items).toEqual([]);
    expect(first.codeState).not.toBe(second.codeState);
    expect(listVerifications(c.project, runId).map((r) => r.id)).toEqual(['v0001', 'v0002']);
    expect(latestVerification(c.project, runId)?.id).toBe('v0002');
    expect(latestVerification(c.project, runId)?.codeState).toBe(currentCodeState(p.root));
    // Concurrent verifications still get distinct ids and files.
    const [a, b] = await Promise.all([runVerification(c.project), runVerification(c.project)]);
    expect([a.id, b.id].sort()).toEqual(['v0003', 'v0004']);
    expect(
      auditLines(p.root)
        .filter((e) => e.action === 'verify.run')
        .map((e) => e.target),
    ).toEqual(['v0001', 'v0002', a.id, b.id].sort());
  });

  it('configuration overrides detection; `only` runs a subset and says the rest blocks', async () => {
    const pkg = JSON.stringify({
      type: 'module',
      scripts: { test: 'node --test', build: 'node -e "process.exit(0)"', lint: 'node -e "process.exit(0)"' },
    });
    const { p, c } = await started({
      'package.json': pkg,
      'src/add.js': ADD,
      'test/add.test.js': GREEN,
      'test/red.test.js': RED.replace("it('adds'", "it('adds too'"),
    });
    config(
      p.root,
      'checks:\n  test: node --test test/add.test.js\n  lint: node -e "console.log(\'2 problems\'); process.exit(3)"\n',
    );
    write(p.root, 'src/add.js', `${ADD}\n`);
    const { s } = await verify(c);
    expect(check(s, 'test')).toMatchObject({
      verdict: 'pass',
      command: 'node --test test/add.test.js',
      tests: { passed: 2, failed: 0 },
    });
    expect(check(s, 'build')).toMatchObject({ verdict: 'pass', command: 'npm run build' });
    expect(check(s, 'lint')).toMatchObject({ verdict: 'fail', exitCode: 3, reason: 'exited with code 3' });
    expect(recordOf(p.root, s).checks.map((x) => [x.name, x.source])).toEqual([
      ['build', 'detected'],
      ['test', 'config'],
      ['lint', 'config'],
    ]);
    expect(s.blocking.items).toEqual([
      expect.stringMatching(/^The lint check failed: `node -e .*` exited with code 3\. Fix the errors it reports/),
    ]);

    const partial = (await verify(c, { only: ['lint', 'lint'] })).s;
    expect(partial.checks.map((x) => [x.name, x.verdict])).toEqual([
      ['build', 'not-run'],
      ['test', 'not-run'],
      ['lint', 'fail'],
    ]);
    expect(partial.blocking.items[0]).toMatch(/did not run the build check/);
    expect(partial.blocking.items[1]).toMatch(/did not run the tests.*without `only`/);
  });

  it('a timeout kills the whole process group, even a child that ignores SIGTERM', async () => {
    const script = [
      "const { spawn } = require('node:child_process');",
      "const fs = require('node:fs');",
      "const child = spawn(process.execPath, ['-e', \"process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)\"], { stdio: 'ignore' });",
      'fs.writeFileSync(process.env.PIDS_FILE, `${process.pid} ${child.pid}`);',
      "fs.writeFileSync('left-behind.txt', 'written in the clean room');",
      "process.on('SIGTERM', () => {});",
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const { p, c } = await started({ 'hang.cjs': script, 'src/add.js': ADD });
    const pidsFile = path.join(p.root, '..', 'pids.txt');
    config(p.root, `checks:\n  test: PIDS_FILE=${pidsFile} node hang.cjs\n  timeoutSeconds: 1\n`);
    write(p.root, 'src/add.js', `${ADD}// changed\n`);
    const t0 = Date.now();
    const { s } = await verify(c);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(check(s, 'test')).toMatchObject({ verdict: 'fail', reason: 'timed out after 1 s', exitCode: null });
    expect(recordOf(p.root, s).checks[1]).toMatchObject({
      timedOut: true,
      signal: expect.stringMatching(/^SIG(TERM|KILL)$/),
    });
    expect(s.blocking.items).toEqual([
      expect.stringMatching(
        /^The test check `.+ node hang\.cjs` timed out after 1 s: make it faster or raise checks\.timeoutSeconds/,
      ),
    ]);
    // The check ran in the clean room: what it wrote there is gone, and the project is as it was.
    expect(fs.existsSync(path.join(p.root, 'left-behind.txt'))).toBe(false);
    expect(s.gaps).toEqual([]);
    expect(recordOf(p.root, s).diff.files.map((f) => f.path)).toEqual(['src/add.js']);
    const pids = fs.readFileSync(pidsFile, 'utf8').split(' ').map(Number);
    fs.rmSync(pidsFile);
    expect(pids).toHaveLength(2);
    // A killed process may linger a moment as a zombie until its new parent reaps it.
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
  });

  it('outside a git repository: the tests still run, and the record says in plain words what cannot be known', async () => {
    const { p, c } = await started(
      { 'package.json': PKG, 'src/add.js': ADD, 'test/add.test.js': GREEN },
      { git: false },
    );
    const { s, text: out } = await verify(c);
    expect(check(s, 'test')).toMatchObject({ verdict: 'pass', tests: { passed: 2 } });
    expect(s.diff).toBeNull();
    expect(s.codeState).toBeNull();
    expect(s.blocking.items).toEqual([]);
    expect(s.gaps).toEqual([
      expect.stringMatching(
        /^Not a git repository: the server cannot measure what changed, so there is no diff, no check for deleted or newly skipped test files, and no secret scan/,
      ),
    ]);
    expect(out).toMatch(/Gaps \(the server cannot know\):\n- Not a git repository/);
    expect(recordOf(p.root, s)).toMatchObject({
      git: { repository: false },
      diff: { available: false },
      testFiles: { available: false },
      secrets: { available: false },
    });
    expect(currentCodeState(p.root)).toBeNull();
  });

  it('without a test command the tests fact is unknown and says how to set one', async () => {
    const { p, c } = await started({ 'src/add.js': ADD });
    write(p.root, 'src/add.js', `${ADD}// more\n`);
    const { s } = await verify(c);
    expect(check(s, 'test')).toMatchObject({
      verdict: 'unknown',
      command: null,
      reason: 'no test command: set checks.test in .loki/config.yaml',
    });
    expect(s.blocking.items).toEqual([]);
    expect(s.gaps).toEqual([expect.stringMatching(/^No test command.*set checks\.test in \.loki\/config\.yaml/)]);
  });

  it('is refused without a run, and with an invalid configuration, changing nothing', async () => {
    p = tempProject({ git: true, files: { 'package.json': PKG } });
    c = await connect(p);
    const r = await c.call('loki_verify', {});
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/no run yet: call loki_start before verifying/);
    expect(fs.existsSync(path.join(p.root, '.loki', 'verify'))).toBe(false);
    await c.call('loki_start', { specText: 'Add two numbers' });
    config(p.root, 'checks:\n  timeoutSeconds: 0\n');
    const bad = await c.call('loki_verify', {});
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/checks\.timeoutSeconds must be at least 1/);
    expect(fs.existsSync(path.join(p.root, '.loki', 'verify'))).toBe(false);
  });
});
