/**
 * The secret scan of changed files (domain/secret-scan.ts), tested directly: honest code in several languages
 * gives no finding, real-looking credentials (random, generated per run) are found in every spelling the scan
 * knows, allow markers need a reason, and a NUL byte does not hide a file.
 */
import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeForScan,
  isSecretName,
  scanForSecrets,
  secretLiteral,
  type ScanFinding,
} from '../mcp-server/src/domain/secret-scan.js';
import { scrubText } from '../mcp-server/src/domain/secrets.js';

const scan = (file: string, content: string | Buffer): ScanFinding[] =>
  scanForSecrets(file, decodeForScan(file, typeof content === 'string' ? Buffer.from(content) : content));
const kinds = (file: string, content: string | Buffer) => scan(file, content).map((f) => f.kind);

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/**
 * A seeded generator (mulberry32): values as random as real credentials, the same on every run. The name test
 * cannot tell every random string from a name (about 1 in 2,000 random 32-character tokens splits into
 * word-like pieces), and a test must not fail one run in a thousand.
 */
let seed = 0x10c1;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
/** `n` random bytes. */
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
/** `n` random characters of `alphabet`. */
function rnd(n: number, alphabet = ALNUM): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(random() * alphabet.length)];
  return out;
}
const b64url = (s: string) => Buffer.from(s).toString('base64url');

/** A password a person might choose for a real system: letters, digits and a symbol, nothing fake-sounding. */
const PASSWORD = `Qz${rnd(4)}7v!${rnd(3)}`;

describe('honest code is not a secret', () => {
  // [file, line]: the spellings that blocked honest runs, or could.
  const HONEST: [string, string][] = [
    // JavaScript / TypeScript
    ['src/calc.ts', 'const tokens = expr.match(/\\d+/g);'],
    ['src/auth.ts', 'password = await hash(input);'],
    ['src/parse.ts', 'const token = lexer.next();'],
    ['src/schema.ts', 'export const User = z.object({ secret: z.string(), password: z.string().min(8) });'],
    ['src/types.ts', 'interface Config {\n  apiKey: string;\n  token?: string;\n}'],
    ['src/env.ts', 'const token = process.env.TOKEN;'],
    ['src/login.ts', 'const { password, ...rest } = user;'],
    ['src/login.ts', "if (token === undefined) throw new Error('token required');"],
    ['src/login.ts', 'const passwordHash = await bcrypt.hash(password, 10);'],
    ['src/http.ts', 'const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });'],
    ['src/llm.ts', 'const maxTokens = 4096;'],
    ['src/llm.ts', "const tokenizer = new Tokenizer('cl100k_base');"],
    ['src/store.ts', "export const TOKEN_KEY = 'auth_token';"],
    ['src/store.ts', "const secretName = 'prod/db/password';"],
    ['src/api.ts', 'const apiKey = config.get("apiKey");'],
    ['src/base62.ts', "const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';"],
    ['src/lexer.ts', "tokens.push({ type: 'number', value: m[0] });"],
    ['src/example.ts', "const placeholder = { apiKey: '<your-api-key>', password: 'changeme', secret: 'xxx' };"],
    ['test/login.test.ts', "const token = 'test-token'; const password = 'P4ssw0rd'; const secret = '';"],
    ['src/db.ts', "const DB_URL = 'postgres://postgres:postgres@localhost:5432/app';"],
    ['src/http.ts', "await fetch(url, { credentials: 'include' });"],
    ['src/jwt.ts', "const token = jwt.sign({ sub: user.id }, secret, { expiresIn: '1h' });"],
    ['src/pem.ts', "if (pem.startsWith('-----BEGIN RSA PRIVATE KEY-----')) return parse(pem);"],
    ['src/rules.ts', 'const passwordRegex = /^(?=.*[A-Z])(?=.*\\d).{8,}$/;'],
    ['src/form.ts', "errors.password = 'Password must be at least 8 characters';"],
    ['src/form.tsx', '<input type="password" name="password" autoComplete="current-password" />'],
    ['src/model.js', 'password: { type: String, required: true, minlength: 8 },'],
    ['src/map.js', 'const sorted = tokens.map((token) => token.trim()).filter(Boolean);'],
    ['src/args.ts', 'function login(user: string, token: string, fallback = defaultToken) {}'],
    ['src/crypto.ts', "const digest = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';"],
    ['src/pkce.ts', 'const secret = crypto.randomBytes(32).toString("hex");'],
    ['locales/en.json', '{ "password": "Password", "forgotPassword": "Forgot your password?", "token": "Token" }'],
    // Python
    ['app/auth.py', 'password = getpass.getpass()'],
    ['app/auth.py', 'token = os.environ["GITHUB_TOKEN"]'],
    ['app/models.py', 'api_key: str = Field(..., min_length=32)'],
    ['app/settings.py', 'SECRET_KEY = os.getenv("SECRET_KEY", "")'],
    ['app/nlp.py', 'tokens = tokenizer.tokenize(text)'],
    ['app/auth.py', 'def login(username: str, password: str) -> Token:'],
    ['app/models.py', 'self.password = make_password(raw_password)'],
    ['tests/test_auth.py', 'assert token == expected_token'],
    ['app/lex.py', "name_token = r'[^\\W\\d]\\w*'"],
    ['app/db.py', 'password = f"{prefix}-{suffix}"'],
    // Go
    ['lexer/lexer.go', 'token := lexer.Next()'],
    ['auth/auth.go', 'password, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)'],
    ['auth/user.go', 'type User struct {\n\tPassword string `json:"password"`\n\tAPIKey string `json:"api_key"`\n}'],
    ['cmd/main.go', 'apiKey := os.Getenv("API_KEY")'],
    ['cmd/main.go', 'var secret = flag.String("secret", "", "signing secret")'],
    // YAML
    ['docker-compose.yml', 'services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASSWORD}'],
    ['.github/workflows/ci.yml', 'env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n  token: ${{ github.token }}'],
    ['group_vars/all.yml', 'api_key: !vault |\n  $ANSIBLE_VAULT;1.1;AES256'],
    ['k8s/deploy.yaml', 'secretName: my-app-secrets\nsecretKeyRef:\n  name: db\n  key: password'],
    ['config.yaml', 'passwordPolicy: strict\npassword: changeme\ntokens: 4096\nmax_tokens: 512'],
    // .env and shell
    ['.env.example', 'DB_PASSWORD=${DB_PASSWORD}\nAPI_KEY=\nSECRET_KEY=your-secret-key-here\nGITHUB_TOKEN=<token>'],
    ['.env', 'JWT_SECRET=change-me\nPASSWORD_MIN_LENGTH=12\nTOKEN_TTL_SECONDS=3600'],
    [
      '.env.local',
      'NEXTAUTH_SECRET=\nDATABASE_URL="mysql://root:root@127.0.0.1:3306/dev"\nREDIS_PASSWORD=${REDIS_PASSWORD:-}',
    ],
    ['scripts/deploy.sh', 'export TOKEN="$(cat /run/secrets/token)"\nPASSWORD=$1'],
    // Java, Ruby, PHP, Terraform, SQL
    ['src/Login.java', 'String password = request.getParameter("password");'],
    ['app/controllers/session.rb', 'user.authenticate(password: params[:password])'],
    ['src/login.php', "$password = $_POST['password'];"],
    ['infra/db.tf', 'password = var.db_password'],
    ['db/schema.sql', 'CREATE TABLE users (id INT, password_hash TEXT, token_expires_at TIMESTAMP);'],
    // Docs: the placeholder keys every provider documents
    ['docs/aws.md', 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE'],
    ['docs/github.md', 'export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'],
    [
      'docs/jwt.md',
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
    ],
  ];

  it('has a table of at least 25 spellings in JS/TS, Python, Go, YAML and .env', () => {
    expect(HONEST.length).toBeGreaterThanOrEqual(25);
    for (const ext of [/\.tsx?$/, /\.py$/, /\.go$/, /\.ya?ml$/, /(^|\/)\.env/])
      expect(HONEST.filter(([f]) => ext.test(f)).length).toBeGreaterThanOrEqual(3);
  });

  it.each(HONEST)('%s: %s', (file, line) => {
    expect(scan(file, `${line}\n`)).toEqual([]);
  });

  it('an assignment from any call, expression or reference is not a finding (fuzzed)', () => {
    const name = fc.constantFrom('token', 'tokens', 'password', 'secret', 'apiKey', 'API_KEY', 'accessToken');
    const ident = fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,12}$/);
    const rhs = fc.oneof(
      fc.tuple(ident, ident).map(([a, b]) => `${a}.${b}()`),
      fc.tuple(ident, ident).map(([a, b]) => `await ${a}(${b})`),
      ident.map((a) => `process.env.${a.toUpperCase()}`),
      fc.tuple(ident, ident).map(([a, b]) => `${a} + ${b}`),
      ident.map((a) => `\`\${${a}}\``),
      ident,
    );
    fc.assert(
      fc.property(name, fc.constantFrom(' = ', ': ', ' := '), rhs, (n, op, r) => {
        expect(scan('src/a.ts', `const x = { ${n}${op}${r} };\n`)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('names: a secret word holds the value; words about the secret do not', () => {
    for (const n of [
      'password',
      'DB_PASSWORD',
      'apiKey',
      'x-api-key',
      'SECRET_KEY_BASE',
      'client_secret',
      'GITHUB_TOKEN',
    ])
      expect(isSecretName(n), n).toBe(true);
    for (const n of ['tokens', 'tokenizer', 'maxTokens', 'passwordHash', 'secretName', 'token_url', 'NextToken', 'key'])
      expect(isSecretName(n), n).toBe(false);
  });

  it('values: placeholders, references, prose, paths and names are not secrets', () => {
    for (const v of ['changeme', '<your-token>', '', 'test', 'example', '${TOKEN}', 'Forgot your password?', '/run/x'])
      expect(secretLiteral(v), v).toBe(false);
    for (const v of [PASSWORD, rnd(32), `${rnd(20)}==`]) expect(secretLiteral(v), v).toBe(true);
  });
});

describe('real-looking secrets are found', () => {
  const aws = `AKIA${rnd(16, UPPER32)}`;
  const ghp = `ghp_${rnd(36)}`;
  const jwt = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"u-${rnd(6)}","iat":1765000000}`)}.${rnd(43)}`;
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  const KNOWN: [string, string, string][] = [
    ['aws-access-key', 'src/aws.ts', `const id = '${aws}';`],
    ['github-token', 'src/gh.ts', `const t = "${ghp}";`],
    ['github-token', 'src/gh.ts', `const t = "github_pat_${rnd(22)}_${rnd(59)}";`],
    ['gitlab-token', 'ci/gl.yml', `token: glpat-${rnd(20)}`],
    [
      'slack-token',
      'src/slack.py',
      `client = WebClient("xoxb-${rnd(11, '0123456789')}-${rnd(12, '0123456789')}-${rnd(24)}")`,
    ],
    ['slack-webhook', 'src/notify.go', `url := "https://hooks.slack.com/services/T${rnd(8)}/B${rnd(8)}/${rnd(24)}"`],
    ['stripe-key', 'src/pay.rb', `Stripe.api_key = 'sk_live_${rnd(24)}'`],
    ['anthropic-key', 'src/ai.ts', `new Anthropic({ apiKey: 'sk-ant-api03-${rnd(80)}' })`],
    ['openai-key', 'src/ai.py', `client = OpenAI(api_key="sk-proj-${rnd(48)}")`],
    ['google-api-key', 'src/maps.js', `loadMaps('AIza${rnd(35)}')`],
    ['google-oauth', 'src/gcp.ts', `const clientSecret = 'GOCSPX-${rnd(28)}';`],
    ['npm-token', '.npmrc', `//registry.npmjs.org/:_authToken=npm_${rnd(36)}`],
    ['jwt', 'test/fixtures.ts', `const session = '${jwt}';`],
    ['private-key', 'certs/key.pem', pem],
    ['private-key', 'service-account.json', `{ "private_key": ${JSON.stringify(pem)} }`],
  ];
  it.each(KNOWN)('%s in %s', (kind, file, content) => {
    expect(kinds(file, content)).toContain(kind);
  });

  const NAMED: [string, string][] = [
    ['src/config.ts', `const apiKey = '${rnd(32)}';`],
    ['src/config.ts', `export const config = { password: "${PASSWORD}" };`],
    ['src/config.ts', `const dbPassword: string = '${PASSWORD}';`],
    ['app/settings.py', `PASSWORD = "${PASSWORD}"`],
    ['app/settings.py', `password: str = '${PASSWORD}'`],
    ['app/client.py', `connect(host="db", password=b"${PASSWORD}")`],
    ['main.go', `apiKey := "${rnd(40)}"`],
    ['main.go', `var apiKey string = "${rnd(40)}"`],
    ['.env', `DB_PASSWORD=${PASSWORD}`],
    ['.env.production', `STRIPE_SECRET="${rnd(30)}"`],
    ['config.yml', `database:\n  password: ${PASSWORD}`],
    ['k8s/secret.yaml', `data:\n  password: ${Buffer.from(PASSWORD).toString('base64')}`],
    ['appsettings.json', `{ "client_secret": "${rnd(34)}" }`],
    ['settings.xml', `<server><password>${PASSWORD}</password></server>`],
    ['app/config.rb', `config.secret_key_base = '${rnd(64, '0123456789abcdef')}'`],
    ['src/Main.java', `private static final String API_KEY = "${rnd(32)}";`],
    ['src/config.php', `'password' => '${PASSWORD}',`],
    ['src/keys.h', `#define API_KEY "${rnd(32)}"`],
    ['infra/main.tf', `password = "${PASSWORD}"`],
    ['scripts/deploy.sh', `curl --password=${PASSWORD} https://example.org`],
  ];
  it.each(NAMED)('a literal under a secret name: %s', (file, content) => {
    expect(kinds(file, `${content}\n`)).toEqual(['assignment']);
  });

  it('credentials in a URL and Authorization values', () => {
    expect(kinds('src/db.ts', `const url = 'postgres://app:${PASSWORD}@db.internal:5432/app';`)).toEqual([
      'url-credentials',
    ]);
    expect(kinds('test.http', `Authorization: Bearer ${rnd(40)}`)).toEqual(['authorization']);
    const basic = Buffer.from(`deploy:${PASSWORD}`).toString('base64');
    expect(kinds('test.http', `Authorization: Basic ${basic}`)).toEqual(['authorization']);
    expect(kinds('test.http', `Authorization: Basic ${Buffer.from('user:password').toString('base64')}`)).toEqual([]);
  });

  it('a known prefix split across adjacent or concatenated string literals', () => {
    const body = ghp.slice(4);
    expect(kinds('src/a.ts', `const t = 'ghp_' + '${body}';`)).toEqual(['split:github-token']);
    expect(kinds('src/a.ts', `const t =\n  'ghp_' +\n  '${body.slice(0, 10)}' +\n  "${body.slice(10)}";`)).toEqual([
      'split:github-token',
    ]);
    expect(kinds('src/a.py', `key = ("AKIA" "${aws.slice(4)}")`)).toEqual(['split:aws-access-key']);
    expect(kinds('src/a.go', `key := "AKIA" + "${aws.slice(4, 10)}" + "${aws.slice(10)}"`)).toEqual([
      'split:aws-access-key',
    ]);
    // Pieces that do not make a credential together are ordinary strings.
    expect(kinds('src/a.ts', "const s = 'ghp_' + 'short';\nconst u = 'AKIA' + suffix;")).toEqual([]);
  });

  it('a base64 blob that decodes to a known format', () => {
    const blob = Buffer.from(`token=${ghp}`).toString('base64');
    expect(kinds('src/a.ts', `const cfg = '${blob}';`)).toEqual(['base64:github-token']);
    const kubeconfig = `users:\n- name: admin\n  user:\n    client-key-data: ${Buffer.from(pem).toString('base64')}`;
    expect(kinds('kubeconfig.yaml', kubeconfig)).toEqual(['base64:private-key']);
    // Base64 of ordinary text is not a secret.
    expect(
      kinds('src/a.ts', `const s = '${Buffer.from('hello world, this is only a sentence').toString('base64')}';`),
    ).toEqual([]);
  });

  it('reports each finding on its line and never returns the value', () => {
    const found = scan('src/config.ts', `// config\nexport const region = 'eu';\nexport const key = '${aws}';\n`);
    expect(found).toEqual([
      { kind: 'aws-access-key', start: expect.any(Number), end: expect.any(Number), line: 3, allowed: null },
    ]);
  });

  it('the formats added to the shared list: Hugging Face, Shopify, Square', () => {
    const hex = '0123456789abcdef';
    expect(kinds('src/hf.py', `HF = "hf_${rnd(34)}"\n`)).toContain('huggingface-token');
    expect(kinds('src/shop.ts', `const t = 'shp${'at'}_${rnd(32, hex)}';\n`)).toContain('shopify-token');
    expect(kinds('src/sq.rb', `client = Square::Client.new(access_token: 'sq0${'atp'}-${rnd(22)}')\n`)).toContain(
      'square-token',
    );
    expect(kinds('src/sq.rb', `secret = "sq0${'csp'}-${rnd(43)}"\n`)).toContain('square-token');
    // Placeholders in their shape are not findings.
    expect(kinds('README.md', `HF_TOKEN=hf_${'x'.repeat(34)}\n`)).toEqual([]);
  });

  it('scrubText still redacts every known format (what is stored stays as strong as before)', () => {
    for (const [kind, file, content] of KNOWN) {
      const [found] = scan(file, content);
      expect(scrubText(content).text, kind).not.toContain(content.slice(found!.start, found!.end));
    }
  });
});

describe('allow markers', () => {
  const key = () => `AKIA${rnd(16, UPPER32)}`;

  it.each([
    ['src/a.ts', (k: string) => `const k = '${k}'; // loki-allow-secret: test fixture key, not a real credential`],
    ['src/a.ts', (k: string) => `// loki-allow-secret: test fixture key, not a real credential\nconst k = '${k}';`],
    ['src/a.ts', (k: string) => `const k = '${k}'; /* loki-allow-secret: test fixture key, not a real credential */`],
    ['src/a.ts', (k: string) => `  /** loki-allow-secret: test fixture key, not a real credential */\n  k: '${k}',`],
    ['app/a.py', (k: string) => `# loki-allow-secret: test fixture key, not a real credential\nKEY = "${k}"`],
    [
      'db/seed.sql',
      (k: string) => `INSERT INTO keys VALUES ('${k}'); -- loki-allow-secret: test fixture key, not a real credential`,
    ],
    [
      'docs/a.html',
      (k: string) => `<!-- loki-allow-secret: test fixture key, not a real credential -->\n<code>${k}</code>`,
    ],
    ['.env.test', (k: string) => `AWS_KEY=${k} # loki-allow-secret: test fixture key, not a real credential`],
  ])('allows with a reason: %s', (file, content) => {
    const found = scan(file, content(key()));
    expect(found).toHaveLength(1);
    expect(found[0]!.allowed).toBe('test fixture key, not a real credential');
  });

  it.each([
    ['no reason', (k: string) => `const k = '${k}'; // loki-allow-secret`],
    ['an empty reason', (k: string) => `const k = '${k}'; // loki-allow-secret:   `],
    ['a reason with no word', (k: string) => `const k = '${k}'; // loki-allow-secret: ok`],
    ['not in a comment', (k: string) => `const k = '${k}', note = 'loki-allow-secret: fixture';`],
    ['two lines above', (k: string) => `// loki-allow-secret: fixture key for tests\n\nconst k = '${k}';`],
    [
      'after code on the line above',
      (k: string) => `f(); // loki-allow-secret: fixture key for tests\nconst k = '${k}';`,
    ],
  ])('does not allow with %s', (_what, content) => {
    const found = scan('src/a.ts', content(key()));
    expect(found).toHaveLength(1);
    expect(found[0]!.allowed).toBeNull();
  });

  it('scrubs and caps the reason (it is stored and shown)', () => {
    const k = key();
    const found = scan(
      'src/a.ts',
      `const k = '${k}'; // loki-allow-secret: fixture, same as ${k} ${'and more '.repeat(40)}`,
    );
    expect(found[0]!.allowed).not.toContain(k);
    expect(found[0]!.allowed!.length).toBeLessThanOrEqual(200);
  });
});

describe('NUL bytes and binary files', () => {
  const key = `AKIA${rnd(16, UPPER32)}`;

  it('a source file with a NUL byte is decoded and scanned, lines kept', () => {
    const data = Buffer.from(`const a = 1;\0\nexport const apiKey = '${rnd(32)}';\nconst id = '${key}';\n`);
    const decoded = decodeForScan('src/config.js', data);
    expect(decoded).toMatchObject({ binary: false, encoding: 'utf8-with-nul' });
    expect(scanForSecrets('src/config.js', decoded).map((f) => [f.kind, f.line])).toEqual([
      ['assignment', 2],
      ['aws-access-key', 3],
    ]);
  });

  it('UTF-16 text (with or without a byte-order mark) is decoded', () => {
    const text = `# settings\nPASSWORD = "${PASSWORD}"\n`;
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const be = Buffer.from(text, 'utf16le').swap16();
    expect(decodeForScan('settings.py', le).encoding).toBe('utf16le');
    expect(decodeForScan('settings.dat', be).encoding).toBe('utf16be');
    expect(kinds('settings.py', le)).toEqual(['assignment']);
    expect(kinds('settings.dat', be)).toEqual(['assignment']);
  });

  it('a binary file is searched for known formats in its printable runs', () => {
    const bin = Buffer.concat([bytes(300), Buffer.from([0]), Buffer.from(`\x01aws=${key}\x02`), bytes(300)]);
    const decoded = decodeForScan('assets/app.bin', bin);
    expect(decoded.binary).toBe(true);
    expect(scanForSecrets('assets/app.bin', decoded).map((f) => f.kind)).toEqual(['aws-access-key']);
    // Only provider formats: a name and a value in a binary are not enough to block.
    expect(
      kinds('assets/app.bin', Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(`password = "${PASSWORD}"`)])),
    ).toEqual([]);
  });

  it('random binary content gives no finding (fuzzed)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4096 }), (bytes) => {
        const data = Buffer.concat([Buffer.from([0]), Buffer.from(bytes)]);
        expect(scan('assets/blob.bin', data)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('stays fast on large and adversarial input', () => {
    const inputs = [
      'password'.repeat(50_000),
      `${'"a" + '.repeat(30_000)}"b"`,
      `${'key = '.repeat(30_000)}`,
      'A'.repeat(200_000),
      `${'x://'.repeat(20_000)}`,
      `// loki-allow-secret: ${'r '.repeat(50_000)}`,
    ];
    const t = performance.now();
    for (const s of inputs) scan('src/big.ts', s);
    expect(performance.now() - t).toBeLessThan(3000);
  });
});
