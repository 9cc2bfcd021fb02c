/**
 * Secrets at rest (issue 17): realistic credentials of 19 kinds, sent through every tool and command that takes
 * free text, are found nowhere on disk afterwards: not in any file under the project (`.loki/loki.db` and its
 * write-ahead log, checkpoint snapshots, receipts, the spec copy), not in git's objects (decompressed: checkpoint
 * commits and their messages), not under LOKI_HOME. The run is a real one, on a real git repository, driven to
 * completion through the SDK client, with the CLI spawned for what only a person can do.
 *
 * The credentials are made here at run time from a seeded generator (as tests/secrets.test.ts does), so this file
 * holds none a scanner would find, and every run sends the same values.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scrubInput, scrubStoredData, scrubText } from '../mcp-server/src/domain/secrets.js';
import {
  allFiles,
  auditLines,
  dbRows,
  DIST,
  phaseOf,
  structured,
  tempProject,
  text,
  type TempProject,
} from './helpers.js';
import {
  GOOD_SUM,
  HELD_OUT_SEED,
  README,
  SPEC,
  TEST_FILE,
  closeAll,
  ok,
  open,
  use,
  write,
} from './fixtures/sum-run.js';

afterEach(closeAll);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DIGITS = '0123456789';
const HEX = '0123456789abcdef';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const URLSAFE = `${ALNUM}-_`;

/** mulberry32 from a fixed seed: values as random as real credentials, the same on every run. */
let seed = 0x5ec7e7;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function rnd(n: number, alphabet = ALNUM): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}
const b64url = (s: string) => Buffer.from(s).toString('base64url');

interface Planted {
  kind: string;
  /** What must never be on disk. */
  value: string;
  /** How it is written in the text sent. */
  text: string;
}

const pem = crypto.generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const pemBody = pem.split('\n')[1]!;

function planted(): Planted[] {
  const aws = `AKIA${rnd(16, UPPER32)}`;
  const awsSecret = `${rnd(18, `${ALNUM}+/`)}9${rnd(21, `${ALNUM}+/`)}`;
  const dbPassword = `Qz${rnd(8)}7v`;
  const prose = `${rnd(6, LOWER)}${rnd(1, DIGITS)}-${rnd(5, LOWER)}-${rnd(7, LOWER)}`;
  const jwt = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"u-${rnd(6)}","iat":1765000000}`)}.${rnd(43, URLSAFE)}`;
  const webhook = `https://hooks.slack.com/services/T${rnd(8)}/B${rnd(8)}/${rnd(24)}`;
  const bearer = rnd(40);
  const token = `${rnd(15)}4${rnd(16)}`;
  const list: Planted[] = [
    { kind: 'aws-access-key-id', value: aws, text: `aws key id ${aws}` },
    { kind: 'aws-secret-access-key', value: awsSecret, text: `aws_secret_access_key = ${awsSecret}` },
    { kind: 'github-classic', value: `ghp_${rnd(36)}`, text: '' },
    { kind: 'github-fine-grained', value: `github_pat_${rnd(22)}_${rnd(59)}`, text: '' },
    { kind: 'gitlab', value: `glpat-${rnd(20, URLSAFE)}`, text: '' },
    { kind: 'slack-bot', value: `xoxb-${rnd(11, DIGITS)}-${rnd(12, DIGITS)}-${rnd(24)}`, text: '' },
    { kind: 'slack-webhook', value: webhook, text: `notify ${webhook}` },
    { kind: 'stripe', value: `sk_live_${rnd(24)}`, text: '' },
    { kind: 'google-api-key', value: `AIza${rnd(35, URLSAFE)}`, text: '' },
    { kind: 'openai', value: `sk-proj-${rnd(48, URLSAFE)}`, text: '' },
    { kind: 'anthropic', value: `sk-ant-api03-${rnd(93, URLSAFE)}AA`, text: '' },
    { kind: 'jwt', value: jwt, text: `session ${jwt}` },
    { kind: 'private-key', value: pemBody, text: pem.trim() },
    {
      kind: 'postgres-url',
      value: dbPassword,
      text: `DATABASE_URL postgres://app:${dbPassword}@db.internal:5432/app`,
    },
    { kind: 'npm', value: `npm_${rnd(36)}`, text: '' },
    { kind: 'prose-password', value: prose, text: `the staging db password is ${prose}` },
    { kind: 'api-key-assignment', value: token, text: `API_KEY=${token}` },
    { kind: 'twilio', value: `SK${rnd(32, HEX)}`, text: '' },
    { kind: 'sendgrid', value: `SG.${rnd(22, URLSAFE)}.${rnd(43, URLSAFE)}`, text: '' },
    { kind: 'bearer', value: bearer, text: `Authorization: Bearer ${bearer}` },
  ];
  return list.map((p) => ({ ...p, text: p.text || `key ${p.value}` }));
}

const PLANTED = planted();
/** Everything in one text (fields of 2,000 characters or more). */
const ALL = PLANTED.map((p) => p.text).join(' | ');
/** The texts in groups of at most `max` characters, for smaller fields; all of them together cover every kind. */
function groups(max: number, oneLine = false): string[] {
  const out: string[] = [];
  for (const p of PLANTED) {
    const t = oneLine ? p.text.replace(/\n/g, ' ') : p.text;
    const last = out[out.length - 1];
    if (last !== undefined && last.length + 3 + t.length <= max) out[out.length - 1] = `${last} | ${t}`;
    else out.push(t);
  }
  return out;
}

/** Substrings that must not be on disk: each value, and its tail (a value half redacted is still a leak). */
const NEEDLES = PLANTED.flatMap((p) => [
  [p.kind, p.value] as const,
  ...(p.value.length >= 24 ? [[`${p.kind} (tail)`, p.value.slice(-16)] as const] : []),
]);

/** Every place a secret could rest: each file's bytes, and git's objects decompressed (commits, trees, blobs). */
function everythingOnDisk(p: TempProject): { where: string; content: string }[] {
  const out = [...allFiles(p.root), ...allFiles(p.home)].map((f) => ({
    where: f,
    content: fs.readFileSync(f).toString('latin1'),
  }));
  if (fs.existsSync(path.join(p.root, '.git'))) {
    const objects = spawnSync('git', ['cat-file', '--batch-all-objects', '--batch'], {
      cwd: p.root,
      maxBuffer: 256 * 1024 * 1024,
    });
    expect(objects.status, objects.stderr?.toString()).toBe(0);
    out.push({ where: 'git objects', content: objects.stdout.toString('latin1') });
  }
  return out;
}

function expectNoSecretOnDisk(p: TempProject): void {
  const places = everythingOnDisk(p);
  expect(places.some((x) => x.where.endsWith('loki.db'))).toBe(true);
  const leaks: string[] = [];
  for (const { where, content } of places)
    for (const [kind, needle] of NEEDLES) if (content.includes(needle)) leaks.push(`${kind} in ${where}`);
  expect(leaks).toEqual([]);
}

function cli(p: TempProject, ...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(DIST, 'loki.js'), ...args], {
    cwd: p.root,
    env: p.env,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the fixtures', () => {
  it('are realistic credentials of at least 14 kinds, each of which the scrubber removes', () => {
    expect(new Set(PLANTED.map((p) => p.kind)).size).toBeGreaterThanOrEqual(14);
    for (const p of PLANTED) {
      const scrubbed = scrubText(p.text).text;
      expect(scrubbed, p.kind).toContain('[REDACTED:');
      for (const [kind, needle] of NEEDLES) expect(scrubbed.includes(needle), `${kind} left in ${p.kind}`).toBe(false);
    }
    const all = scrubText(ALL).text;
    for (const [kind, needle] of NEEDLES) expect(all.includes(needle), kind).toBe(false);
  });
});

describe('the scrubber', () => {
  const PROSE_SECRETS: [string, string][] = [
    ['the db password is hunter2-horse-battery', 'hunter2-horse-battery'],
    ['The staging DB password was Tr0ub4dor&3!', 'Tr0ub4dor&3'],
    ['DB_PASSWORD is hunter22, rotate it monthly', 'hunter22'],
    ['the api key for staging is "abc def ghi"', 'abc def ghi'],
    ['the password is now s3cr3t-Pa55.', 's3cr3t-Pa55'],
    ['the passphrase is correct-horse-battery-staple', 'correct-horse-battery-staple'],
    ['credentials are admin:letmein', 'admin:letmein'],
    ['the admin password was 482915', '482915'],
    ['the secret is: 9f8e7d6c5b4a', '9f8e7d6c5b4a'],
    ['the token for the billing service is `tok-88-alpha`', 'tok-88-alpha'],
  ];
  it.each(PROSE_SECRETS)('redacts the value said in prose: %s', (sentence, value) => {
    const r = scrubText(sentence);
    expect(r.text).not.toContain(value);
    expect(r.kinds).toEqual(['prose-secret']);
  });

  it.each([
    'the token is refreshed every hour',
    'password reset flow must send an email',
    'the token is valid for 24h',
    'the token is base64-encoded',
    'tokens are 32 bytes long',
    'the password is required',
    'the secret is out',
    'the password is too short',
    'the token is a JWT',
    'the token is short-lived.',
    'the api key is stored in /run/secrets/api_key',
    'the password is ${DB_PASSWORD}',
    'the token is set to expire after 1h',
    'the token is up-to-date',
    'Token is HS256-signed',
    'the session token is isolated per user',
    'the password is `<your password>`',
  ])('keeps prose about secrets: %s', (sentence) => {
    expect(scrubText(sentence).text).toBe(sentence);
  });

  it('keeps what the server computed in audit data: digests, ids, receipt paths, archived file names', () => {
    const data = {
      manifest: crypto.createHash('sha256').update('x').digest('hex'),
      receipt: '.loki/proofs/r-20261206-38643b82/RECEIPT.md',
      archivedAs: 'logs/human-input-2026-12-06t23-07-34-715z.md',
      records: { 'trust/r-20261206-38643b82': [crypto.randomBytes(32).toString('hex'), null] },
      setLost: `missing (/tmp/home/held-out/${crypto.randomBytes(16).toString('hex')}/r-1.json)`,
      commit: crypto.randomBytes(20).toString('hex'),
    };
    expect(scrubStoredData(data)).toEqual({ value: data, report: { redacted: 0, kinds: [] } });
    // The certain shapes are still taken out.
    const github = PLANTED.find((p) => p.kind === 'github-classic')!.value;
    const { value, report } = scrubStoredData({ summary: `pushed with ${github}`, n: 3 });
    expect(value).toEqual({ summary: 'pushed with [REDACTED:github-token]', n: 3 });
    expect(report.redacted).toBe(1);
  });

  describe('ordinary data that flows into tasks, evidence and checklists', () => {
    const sha1 = rnd(40, HEX);
    const sha256 = rnd(64, HEX);
    const md5 = rnd(32, HEX);
    const traceId = rnd(32, HEX);
    const uuid = crypto.randomUUID();
    it.each([
      `https://github.com/org/repo/commit/${sha1}`,
      `https://github.com/org/repo/commit/${sha256}`,
      `fixed in github.com/acme/api/blob/${sha1}/src/index.ts#L10`,
      `git object ${sha256}`,
      `sha256 of the tarball: ${sha256}`,
      `md5 ${md5}`,
      `trace id ${traceId}`,
      `traceparent: 00-${traceId}-${rnd(16, HEX)}-01`,
      `https://ci.example.org/runs/${uuid}/logs/${traceId}`,
      `run ${uuid} passed`,
      'migrations/20240101123456_add_users_table.sql',
      'db/migrate/20231115093012_create_sessions_and_tokens.rb',
      'const tokenizer = new Tokenizer()',
      "const tokenizer = new Tokenizer('cl100k_base');",
      'password = await hash(input);',
      'const token = lexer.next();',
      'const apiKey = config.apiKey;',
      'token = nextToken',
      'JWT_SECRET_FILE=/run/secrets/jwt',
      'API_TOKEN_URL=https://auth.example.org/oauth/token',
      'pass the tests',
      'all 42 tests pass 3 times in a row',
      'use the passwd command to change it',
      'mkdir -p src/lib && ssh -p 2222 deploy@host',
      'mysql -u root -p app < dump.sql',
      'docker run -u 1000:1000 img && git push -u origin main',
    ])('keeps %s', (line) => {
      expect(scrubText(line).text).toBe(line);
    });

    it('keeps an assignment from an expression in the strict pass too', () => {
      const data = { label: 'const tokenizer = new Tokenizer()', note: 'secret = compute(seed)' };
      expect(scrubStoredData(data).value).toEqual(data);
    });

    it('still redacts a bare hex key of a digest length when nothing says it is a digest', () => {
      expect(scrubText(`key ${md5}`).text).toBe('key [REDACTED:hex-secret]');
      expect(scrubText(`use ${sha256}.`).text).toBe('use [REDACTED:hex-secret].');
      expect(scrubText(`${rnd(48, HEX)}`).text).toBe('[REDACTED:hex-secret]');
    });

    it('keeps the structure of a URL around a random segment', () => {
      const segment = `${rnd(15)}4${rnd(16)}`;
      expect(scrubText(`https://example.org/hooks/${segment}/run`).text).toBe(
        'https://example.org/hooks/[REDACTED:high-entropy]/run',
      );
    });

    it('redacts the value of an assignment and keeps the name', () => {
      const value = `${rnd(18, `${ALNUM}+/`)}9${rnd(21, `${ALNUM}+/`)}`;
      expect(scrubText(`AWS_SECRET_ACCESS_KEY=${value}`).text).toBe('AWS_SECRET_ACCESS_KEY=[REDACTED:assignment]');
      expect(scrubText(`export AWS_SECRET_ACCESS_KEY=${value}`).text).toBe(
        'export AWS_SECRET_ACCESS_KEY=[REDACTED:assignment]',
      );
      // A literal under a secret name is still a secret, assigned in code or not.
      const word = `hunter${rnd(2, DIGITS)}`;
      expect(scrubText(`password = ${word}`).text).toBe('password = [REDACTED:assignment]');
      expect(scrubText(`const password = "${word}";`).text).toBe('const password = "[REDACTED:assignment]";');
    });
  });

  describe('secrets said in commands and URLs', () => {
    const pw = `Tr0${rnd(4, LOWER)}4${rnd(3, LOWER)}3`;
    const word = `${rnd(6, LOWER)}2${rnd(5, LOWER)}`;
    it.each([
      [`redis://:${pw}@cache.internal:6379/0`, 'redis://[REDACTED:url-credentials]@cache.internal:6379/0'],
      [`curl -u admin:${pw} https://api.example.org`, 'curl -u [REDACTED:command-password] https://api.example.org'],
      [`curl --user admin:${pw} https://x.org`, 'curl --user [REDACTED:command-password] https://x.org'],
      [`mysql -p${word}`, 'mysql -p[REDACTED:command-password]'],
      [`mysql -u root -p ${pw} app`, 'mysql -u root -p [REDACTED:command-password] app'],
      [`mysqldump -uroot -p'${pw}' app`, "mysqldump -uroot -p'[REDACTED:command-password]' app"],
      [`passwd ${word}`, 'passwd [REDACTED:prose-secret]'],
      [`pass ${pw}&3`, 'pass [REDACTED:prose-secret]'],
    ])('redacts %s', (line, expected) => {
      expect(scrubText(line).text).toBe(expected);
      expect(scrubStoredData(line).value).toBe(expected);
    });
  });

  it('redacts the formats added to the shared list: Hugging Face, Shopify, Square', () => {
    for (const [value, kind] of [
      [`hf_${rnd(34)}`, 'huggingface-token'],
      [`shp${'at'}_${rnd(32, HEX)}`, 'shopify-token'],
      [`sq0${'atp'}-${rnd(22, URLSAFE)}`, 'square-token'],
      [`sq0${'csp'}-${rnd(43, URLSAFE)}`, 'square-token'],
    ] as const) {
      expect(scrubText(`deploy with ${value} now`)).toEqual({
        text: `deploy with [REDACTED:${kind}] now`,
        redacted: 1,
        kinds: [kind],
      });
      expect(scrubStoredData(`x ${value}`).value).toBe(`x [REDACTED:${kind}]`);
    }
  });

  it("passes the verbatim fields of a tool's input as sent, at any depth", () => {
    const random = rnd(40);
    const { value, report } = scrubInput(
      { tasks: [{ id: random, title: `t ${random}` }], token: random, summary: random },
      new Set(['id', 'token']),
    );
    expect(value).toEqual({
      tasks: [{ id: random, title: 't [REDACTED:high-entropy]' }],
      token: random,
      summary: '[REDACTED:high-entropy]',
    });
    expect(report.redacted).toBe(2);
  });
});

describe('secrets sent through every tool and command are nowhere on disk', () => {
  it(
    'a whole run on a git repository: tasks, checklist, verify, council, completion, checkpoints, memory, CLI',
    {
      timeout: 240_000,
    },
    async () => {
      const p = use(
        tempProject({
          git: true,
          files: {
            'package.json': JSON.stringify({ name: 'sum', private: true, scripts: { test: 'node --test' } }),
            'test/sum.test.js': TEST_FILE,
            '.gitignore': 'node_modules\n',
          },
        }),
      );
      fs.mkdirSync(path.join(p.root, '.loki'));
      fs.writeFileSync(
        path.join(p.root, '.loki', 'config.yaml'),
        'checks:\n  test: node --test\n  timeoutSeconds: 60\n',
      );
      const c = await open({ LOKI_HELD_OUT_SEED: HELD_OUT_SEED });
      const small = groups(180);
      const titles = groups(280);
      const items = groups(480);
      const labels = groups(190, true);

      // The spec, with the credentials in a paragraph of context.
      const started = await c.call('loki_start', { specText: `${SPEC}\n## Context\n\n${ALL}\n`, tier: 'simple' });
      ok(started);
      expect(text(started)).toMatch(/Secrets: \d+ value\(s\) of the input looked like secrets/);
      ok(await c.call('loki_status'));

      // Tasks: added, edited, blocked with a reason, failed with an error, completed with a summary and evidence.
      const added = ok(
        await c.call('loki_task_add', {
          tasks: titles.map((g, i) => ({
            id: `s${i + 1}`,
            title: g,
            description: ALL,
            acceptance: small,
          })),
        }),
      );
      expect(added.inputRedacted).toMatchObject({ count: expect.any(Number) });
      ok(await c.call('loki_task_update', { id: 's1', description: ALL, acceptance: small, title: small[0] }));
      ok(await c.call('loki_task_update', { id: 's2', action: 'block', reason: ALL }));
      ok(await c.call('loki_task_update', { id: 's2', action: 'unblock' }));
      // A person waives a task, with a reason (only the CLI waives).
      const waived = cli(p, 'waive', 'task', 's3', '--reason', ALL);
      expect(waived.code, waived.err).toBe(0);
      expect(waived.err).toMatch(/looked like secrets/);

      // Claim and finish every ready task: the first one fails (with an error), the rest are completed.
      let failed = false;
      const drain = async () => {
        for (let guard = 0; guard < 100; guard++) {
          const claim = structured<{ task: { id: string } | null; token: string }>(
            await c.call('loki_task_claim', { agent: `builder ${PLANTED[0]!.text}` }),
          );
          if (!claim.task) return;
          if (!failed) {
            ok(await c.call('loki_task_fail', { id: claim.task.id, token: claim.token, error: ALL }));
            failed = true;
            continue;
          }
          ok(
            await c.call('loki_task_complete', {
              id: claim.task.id,
              token: claim.token,
              summary: ALL,
              evidence: small,
            }),
          );
        }
      };
      await drain();
      expect(failed).toBe(true);
      // A phase change with a reason (BOOTSTRAP passed by itself at the start; going back takes one).
      expect(ok(await c.call('loki_phase_advance', { to: 'BOOTSTRAP', reason: ALL })).ok).toBe(true);
      await drain();

      // The work itself, then the checklist: items added and waived, manual items met with evidence.
      write('src/sum.js', GOOD_SUM);
      write('README.md', README);
      ok(
        await c.call('loki_checklist_set', {
          items: [
            ...items.map((g) => ({ text: g })),
            { text: 'the config holds the token', check: { kind: 'file-contains', path: 'README.md', text: ALL } },
          ],
        }),
      );
      const list = structured<{ items: { id: string; text: string; check: unknown; status: string }[] }>(
        await c.call('loki_checklist_get'),
      );
      const added2 = list.items.filter((i) => i.text.includes('[REDACTED:') || i.text.startsWith('the config'));
      expect(added2.length).toBe(items.length + 1);
      ok(await c.call('loki_checklist_set', { items: added2.map((i) => ({ id: i.id, waive: ALL })) }));
      const manual = list.items.filter((i) => !i.check && i.status === 'open' && !added2.includes(i));
      if (manual.length)
        ok(
          await c.call('loki_checklist_set', {
            items: manual.map((i) => ({ id: i.id, status: 'met', evidence: ALL })),
          }),
        );
      for (let i = 0; i < 3 && (await phaseOf(c)) !== 'QA'; i++)
        expect(ok(await c.call('loki_phase_advance')).ok).toBe(true);
      expect(await phaseOf(c)).toBe('QA');

      // Verification with a reason, a forced review (a person), the council's votes, completion and its receipt.
      for (const reason of groups(1000)) ok(await c.call('loki_verify', { testRemovalReason: reason }));
      // Unquoted, as a person may type it: the reason is every word after force-review.
      const forced = cli(p, 'council', 'force-review', '--', ...ALL.split(' '));
      expect(forced.code, forced.err).toBe(0);
      const conv = ok(await c.call('loki_council_convene', { reason: groups(500)[0] }));
      const evidence = groups(250).map((g) => `${conv.verification as string}:tests node --test is green ${g}`);
      const held = conv.heldOutToJudge as string[];
      let last: Record<string, unknown> = {};
      for (const seat of [1, 2, 3]) {
        last = ok(
          await c.call('loki_council_vote', {
            council: conv.council,
            seat,
            vote: 'approve',
            rationale: ALL,
            evidence,
            items: held.map((h, i) => ({ id: h, met: true, note: groups(1000)[i % 2] })),
          }),
        );
        if (last.outcome !== 'voting') break;
      }
      if (last.outcome === 'devils-advocate')
        last = ok(
          await c.call('loki_council_vote', {
            council: conv.council,
            seat: 0,
            vote: 'approve',
            rationale: ALL,
            evidence,
          }),
        );
      const done = ok(await c.call('loki_complete'));
      expect(done.status, JSON.stringify(done)).toBe('COMPLETE');

      // Checkpoints, from the tool and the CLI: labels (one line) and reasons.
      for (const label of labels) ok(await c.call('loki_checkpoint_create', { label, reason: ALL }));
      for (const label of labels) {
        const made = cli(p, 'checkpoint', '--', label);
        expect(made.code, made.err).toBe(0);
      }

      // Memories and a cross-project solution.
      for (const g of small) {
        const r = structured<{ redacted: number }>(
          await c.call('loki_memory_record', {
            layer: 'episode',
            outcome: 'failure',
            title: g,
            body: ALL,
            errors: small,
            lessons: small,
            files: small,
            taskType: 'bugfix',
          }),
        );
        expect(r.redacted).toBeGreaterThan(0);
      }
      ok(
        await c.call('loki_learn', {
          category: 'secrets-at-rest',
          title: small[0]!,
          symptoms: small,
          rootCause: ALL,
          prevention: ALL,
          body: ALL,
        }),
      );
      await c.close();

      // The chain and the receipt still verify: nothing the server computed was taken for a secret.
      const audit = cli(p, 'audit', 'verify');
      expect(audit.code, audit.out + audit.err).toBe(0);
      const proof = cli(p, 'proof', 'verify');
      expect(proof.code, proof.out + proof.err).toBe(0);
      // What was sent is there, redacted: in the audit log, the task records and the git commit messages.
      const entries = JSON.stringify(auditLines(p.root));
      expect(entries).toMatch(/\[REDACTED:github-token\]/);
      expect(entries).toMatch(/\[REDACTED:prose-secret\]/);
      expect(
        dbRows<{ body: string }>(p.root, 'SELECT body FROM tasks').some((r) => r.body.includes('[REDACTED:')),
      ).toBe(true);
      const messages = spawnSync('git', ['log', '--all', '--format=%B'], { cwd: p.root, encoding: 'utf8' }).stdout;
      expect(messages).toMatch(/loki-mode checkpoint: .*\[REDACTED:/);

      expectNoSecretOnDisk(p);
    },
  );

  it('a spec file: its copy, tasks and checklist hold it scrubbed; the run records the hash of the file as it is', async () => {
    const p = use(tempProject({ files: { 'docs/prd.md': `${SPEC}\n## Context\n\n${ALL}\n` } }));
    const c = await open();
    const r = ok(await c.call('loki_start', { spec: 'docs/prd.md', tier: 'simple' }));
    const run = r.run as { spec: { sha256: string; copy: string } };
    expect(run.spec.sha256).toBe(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(p.root, 'docs/prd.md')))
        .digest('hex'),
    );
    expect(fs.readFileSync(path.join(p.root, '.loki', run.spec.copy), 'utf8')).toMatch(/\[REDACTED:/);
    await c.close();
    fs.rmSync(path.join(p.root, 'docs/prd.md'));
    expectNoSecretOnDisk(p);
  });

  it('ids, claim tokens and paths are passed as sent: a random-looking task id is not a secret', async () => {
    use(tempProject());
    const c = await open();
    ok(await c.call('loki_start', { specText: '# App\n' }));
    const id = `t-${rnd(44, `${LOWER}${DIGITS}`)}`;
    expect(scrubText(`x ${id} y`).text).not.toContain(id);
    ok(await c.call('loki_task_add', { tasks: [{ id, title: 'a task with an id that looks random' }] }));
    const claim = structured<{ task: { id: string }; token: string }>(await c.call('loki_task_claim', { taskId: id }));
    expect(claim.task.id).toBe(id);
    const done = await c.call('loki_task_complete', { id, token: claim.token, summary: 'done' });
    expect(done.isError, text(done)).toBeFalsy();
    expect(done.structuredContent).not.toHaveProperty('inputRedacted');
  });
});
