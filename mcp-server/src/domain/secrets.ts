/**
 * Secret detection and scrubbing, pure (no I/O): the one scrubber of what the server stores. Text from outside is
 * scrubbed in full where it comes in: every writing tool's input (tools/define.ts, `scrubInput`), the CLI's free
 * text (cli/main.ts), spec files, runner output, memory items and solutions. What the server composes is scrubbed
 * again of the certain shapes only (its own ids, paths and digests look random): every audit entry's data before it
 * is hashed into the chain (`scrubStoredData`, handed to the store by Project, as the store sits below this layer),
 * and checkpoint labels, which become git commit messages (checkpoints/create.ts). The scan of a run's changed
 * files, whose findings block completion, is secret-scan.ts: it shares the provider formats below and is far
 * stricter about everything else.
 *
 * What counts as a secret:
 * - provider formats: AWS access key ids, GitHub / GitLab / Slack / Stripe / OpenAI / Anthropic / Google / Twilio /
 *   SendGrid / Hugging Face / Shopify / Square tokens, npm tokens, Slack webhooks, JWTs, PEM / OpenSSH / PGP private
 *   key blocks;
 * - `Authorization: Bearer|Basic ...`, credentials inside URLs (`scheme://user:pass@host`, `redis://:pass@host`),
 *   passwords on a command line (`curl -u user:pass`, `mysql -ppass`, `mysql -p pass`);
 * - assignments of a literal to secret-looking names (`password=...`, `DB_SECRET: ...`, `"apiKey": "..."`): the
 *   value only. An expression (`tokenizer = new Tokenizer()`, `password = await hash(input)`, `key = cfg.key`), a
 *   path or a URL without credentials (`JWT_SECRET_FILE=/run/secrets/jwt`) is not a secret;
 * - the same said in prose (`the db password is hunter2-horse-battery`): the value, when it is not an ordinary
 *   word (`the token is refreshed every hour` stays as it is), and right after `passwd` / `pass` (`passwd
 *   hunter2horse`; `pass the tests` stays);
 * - high-entropy tokens: 24+ characters of base64/base64url with letters and digits and Shannon entropy of at
 *   least 4.2 bits per character (random base64 has about 4.5-5; identifiers and words stay well below 4), and
 *   hex runs of 32+ characters. In a path or a URL only a segment that is random on its own is taken out, so the
 *   structure stays.
 *
 * Deliberately kept: 40-hex git commit SHAs (memories cite commits); 32-, 64- and 128-hex digests and ids (md5,
 * SHA-256 object ids, sha256, trace ids) in a path or a URL or after a word naming them (`commit`, `sha256`,
 * `trace id`, `md5`); digests introduced as `sha256:`/`sha1:`/`sha512-`; UUIDs; file paths and names joined from
 * words and numbers (`migrations/20240101123456_add_users_table.sql`); ordinary words. A false positive costs a
 * redacted word; a false negative leaks a credential into files that are read back into a model's context, so the
 * rules err towards redacting.
 */

export interface SecretFinding {
  kind: string;
  start: number;
  end: number;
}

export interface Rule {
  kind: string;
  re: RegExp;
  /** The capture group holding the secret (default: the whole match). */
  group?: number;
  /** Return false to keep a match. */
  accept?: (secret: string, text: string, start: number) => boolean;
}

const SECRET_NAME =
  '\\b[A-Za-z0-9_.-]{0,40}(?:passw(?:or)?d|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?key|credentials?|session[_-]?key|signing[_-]?key)[A-Za-z0-9_.-]{0,40}';

/**
 * Provider formats: a match is a credential by its shape alone, wherever it appears. Shared with the change scan
 * (secret-scan.ts), which adds its own plausibility test before it blocks completion on one.
 */
export const KNOWN_FORMATS: readonly Rule[] = [
  {
    kind: 'private-key',
    re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g,
  },
  { kind: 'jwt', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  { kind: 'aws-access-key', re: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b/g },
  { kind: 'github-token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})/g },
  { kind: 'gitlab-token', re: /\bgl(?:pat|dt|rt|ptt|ft|cbt|oas|imt|soat|agent)-[A-Za-z0-9_-]{20,}/g },
  { kind: 'slack-token', re: /\bxox[abposre]-[A-Za-z0-9-]{10,}/g },
  { kind: 'slack-webhook', re: /https:\/\/hooks\.slack\.com\/(?:services|workflows)\/[A-Za-z0-9/_-]{20,}/g },
  { kind: 'stripe-key', re: /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{24,}/g },
  { kind: 'anthropic-key', re: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { kind: 'openai-key', re: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g },
  { kind: 'google-api-key', re: /\bAIza[0-9A-Za-z_-]{35}/g },
  { kind: 'google-oauth', re: /\b(?:GOCSPX-[A-Za-z0-9_-]{20,}|ya29\.[0-9A-Za-z_-]{20,})/g },
  { kind: 'npm-token', re: /\bnpm_[A-Za-z0-9]{36}\b/g },
  // Twilio API key SIDs; an auth token is 32 bare hex characters, which the hex rule below redacts unless a word
  // or a path says it is a digest or an id.
  { kind: 'twilio-key', re: /\bSK[0-9a-f]{32}\b/g },
  { kind: 'sendgrid-key', re: /\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}/g },
  { kind: 'huggingface-token', re: /\bhf_[A-Za-z0-9]{34}\b/g },
  { kind: 'shopify-token', re: /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b/g },
  { kind: 'square-token', re: /\bsq0(?:atp|csp)-[0-9A-Za-z_-]{22,60}/g },
];

/** The names prose gives a secret: the assignment names, and `api key` and its kin written as two words. */
const PROSE_NAME = `(?:${SECRET_NAME}|\\b(?:api|access|secret|private|signing|auth)\\s+key)`;

const RULES: Rule[] = [
  ...KNOWN_FORMATS,
  {
    kind: 'url-credentials',
    // The user name may be empty (`redis://:password@host`).
    re: /\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}:\/\/([^\s/:@'"<>]{0,256}:[^\s/@'"<>]{1,256})@/g,
    group: 1,
  },
  {
    kind: 'command-password',
    // `curl -u admin:pw`, `--user admin:pw`: the `user:password` pair. `docker run -u 1000:1000` is ids, and a
    // `$VAR` is a reference.
    re: /(?:^|\s)(?:-u|--user|--proxy-user|-U)(?:\s+|=)([^\s:'"`$]{1,256}:[^\s'"`]{1,256})/g,
    group: 1,
    accept: (secret) => !/^[\d:]+$/.test(secret) && !isPlaceholder(secret.slice(secret.indexOf(':') + 1)),
  },
  {
    kind: 'command-password',
    // `mysql -phunter2`, `mysqldump -p 'pw'`: attached, the value is the password; after a space it may be the
    // database's name instead, so a plain word is kept there (`mysql -u root -p app`).
    re: /\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb(?:-dump|-admin)?)\b[^\n|;&]{0,200}?\s-p(?:([^\s'"`-][^\s'"`]*)|'([^'\n]+)'|"([^"\n]+)"|\s+([^\s'"`-][^\s'"`]*))/g,
    group: -1,
    accept: (secret, text, start) => {
      if (isPlaceholder(secret)) return false;
      return /-p["']?$/.test(text.slice(Math.max(0, start - 3), start)) || proseSecret(secret, false);
    },
  },
  {
    kind: 'prose-secret',
    // `passwd hunter2horse`, `pass Tr0ub4dor&3`: a password word right before its value. `passwd command` and
    // `pass the tests` are prose; after `pass`, an everyday word, only a value shaped like a password counts.
    re: /\b(passwd|pass)\s+([^\s"'`]{2,200}[^\s"'`.,;:)\]}])/gi,
    group: 2,
    accept: (secret, text, start) => {
      if (/[/\\]/.test(secret) || isPlaceholder(secret)) return false;
      if (
        /^passwd/i.test(
          text
            .slice(Math.max(0, start - 8), start)
            .trim()
            .split(/\s+/)
            .pop() ?? '',
        )
      )
        return proseSecret(secret, false);
      return (
        secret.length >= 6 &&
        /\d/.test(secret) &&
        /[A-Za-z]/.test(secret) &&
        (/[^A-Za-z0-9]/.test(secret) || (/[a-z]/.test(secret) && /[A-Z]/.test(secret))) &&
        !/^[\w.-]+\.[a-z]{1,5}$/.test(secret)
      );
    },
  },
  {
    kind: 'authorization',
    re: /\b(?:[Bb]earer|[Bb]asic|[Tt]oken)\s+([A-Za-z0-9._~+/-]{12,}=*)/g,
    group: 1,
    accept: (s) => /\d/.test(s) || s.length >= 24,
  },
  {
    kind: 'assignment',
    // name, optional closing quote, `=`/`:`/`:=`/`=>`, then a quoted value or a bare token.
    re: new RegExp(
      `(?:${SECRET_NAME})["']?\\s*(?:=>|:=|=|:)\\s*(?:"([^"\\n]{3,})"|'([^'\\n]{3,})'|([^\\s"',;)}\\]]{3,}))`,
      'gi',
    ),
    group: -1,
    accept: (secret, text, start) => {
      // A placeholder may be quoted as code in prose (`<token>`).
      if (isPlaceholder(secret.replace(/^`|`$/g, '')) || /^\d{1,11}$/.test(secret)) return false;
      const quoted = text[start - 1] === '"' || text[start - 1] === "'";
      if (!quoted && expression(secret, text, start)) return false;
      // A path, or a URL without credentials (`JWT_SECRET_FILE=/run/secrets/jwt`), names where the secret is.
      if (/^(?:\.{0,2}\/|~\/)[^:@]*$/.test(secret) || /^[a-z][\w+.-]*:\/\/[^\s@]*$/i.test(secret)) return false;
      // Prose such as "token: expired" or "password: required": a bare, short, all-letter word after a colon.
      const before = text.slice(Math.max(0, start - 3), start);
      if (!quoted && before.includes(':') && /^[a-zA-Z-]{1,15}$/.test(secret)) return false;
      return true;
    },
  },
  {
    kind: 'prose-secret',
    // `the db password is X`, `the API key for staging was "X"`, `credentials are now X`: a name, up to three words
    // saying whose, `is`/`was`/`are`/`were`/`will be` (optionally with `:`), then a quoted or bare value (without the
    // sentence's closing punctuation). The value decides (proseSecret): `the token is refreshed` is prose.
    re: new RegExp(
      `${PROSE_NAME}(?:\\s+(?:for|of|on|to|in)(?:\\s+[\\w.-]{1,40}){1,3})?\\s+(?:is|was|are|were|will\\s+be)(?:\\s*[:=])?\\s+` +
        `(?:(?:now|still|currently|actually|just|simply|(?:set|changed|reset)\\s+to)\\s+)?` +
        `(?:"([^"\\n]{3,200})"|'([^'\\n]{3,200})'|\`([^\`\\n]{3,200})\`|([^\\s"'\`]{2,200}[^\\s"'\`.,;:)\\]}]))`,
      'gi',
    ),
    group: -1,
    accept: (secret, text, start) => proseSecret(secret, /["'`]/.test(text[start - 1] ?? '')),
  },
];

/** Keywords that start an expression: what follows them is code, not a value. */
const EXPRESSION_KEYWORD =
  /^(?:new|await|yield|typeof|function|async|lambda|require|import|this|self|super|match|if|not|await\w*)$/;

/**
 * Whether a bare assigned value is an expression rather than a literal (`tokenizer = new Tokenizer()`,
 * `password = await hash(input)`, `token = lexer.next()`, `apiKey = config.apiKey`, `token = nextToken`): a keyword
 * that starts an expression, a call, a member reference, or, written as code (`name = value` with spaces, `:=`,
 * `=>`), an identifier made of words. A value with digits or symbols (`hunter2`, `Tr0ub4dor&3`) stays a literal.
 */
function expression(value: string, text: string, start: number): boolean {
  if (EXPRESSION_KEYWORD.test(value) && /^[ \t]+[\w$({[]/.test(text.slice(start + value.length))) return true;
  if (/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\(/.test(value)) return true;
  if (/^(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*$/.test(value) && /[a-z]/.test(value)) {
    const parts = value.split('.');
    if (parts.every((p) => !/\d/.test(p) || looksLikeIdentifier(p))) return true;
  }
  const op = text.slice(Math.max(0, start - 4), start);
  if (/(?:\s=|:=|=>)\s+$/.test(op) && /^[A-Za-z_$][A-Za-z_$]*$/.test(value))
    return readsAsWords(value) || value.length <= 3;
  return false;
}

/** A word of prose: lowercase, Capitalised, or an acronym. */
const PROSE_WORD = /^(?:[A-Za-z][a-z]*|[A-Z]+)$/;
/** Numbers, sizes, durations and the names of encodings and algorithms: what prose says a token is. */
const TECH_TERM =
  /^(?:\d{1,5}|\d+(?:ms|s|m|h|d|w|k|kb|mb|gb|b|bytes?|bits?|chars?|characters?|mins?|minutes?|hrs?|hours?|days?)|v\d+|base(?:32|58|64)|sha-?\d+|md5|utf-?8|x509|oauth2|http[23]|ipv[46]|aes-?\d*|rsa-?\d*|pkcs\d+|[hre]s\d{3}|e2e|[2m]fa|s3|ec2|k8s)$/i;

/**
 * Whether the value of a prose sentence about a secret is the secret. Quoted, it is (unless a placeholder). Bare,
 * it is unless it reads as prose: one to three words, numbers of up to five digits, sizes or algorithm names
 * joined by `-`, `_` or `.` (`refreshed`, `short-lived`, `base64-encoded`, `32 bytes`), a placeholder, a path or a
 * URL. So `hunter2-horse-battery`, `Tr0ub4dor&3`, `482915` and `correct-horse-battery-staple` are secrets. A
 * password that is one plain word (`swordfish`) reads as prose and is kept: telling it from an adjective needs a
 * dictionary.
 */
function proseSecret(value: string, quoted: boolean): boolean {
  if (isPlaceholder(value)) return false;
  if (quoted) return true;
  if (/^(?:[/~.]|[a-z][\w+.-]*:\/\/)/i.test(value)) return false;
  const parts = value.split(/[-_.]/);
  if (parts.length > 3) return true;
  return !parts.every((p) => PROSE_WORD.test(p) || TECH_TERM.test(p));
}

const PLACEHOLDER =
  /^(?:\*+|x+|\.\.\.|<[^>]*>|\$\{[^}]*\}?|\$[A-Z_][A-Z0-9_]*|%[A-Z_]+%|\{\{[^}]*\}\}|process\.env\.[A-Za-z0-9_]+|os\.environ.*|env\(.*|\[REDACTED.*|null|none|undefined|true|false|changeme|redacted|your[_-].*|example|required|optional|string)$/i;

function isPlaceholder(s: string): boolean {
  return PLACEHOLDER.test(s.trim());
}

/** `=` only as base64 padding, so `NAME=value` is two tokens and the name stays. */
const TOKEN = /[A-Za-z0-9+/_-]{24,}={0,2}/g;
const HEX = /\b[0-9a-fA-F]{32,}\b/g;
/**
 * Hex lengths of digests and ids: md5 and trace ids (32, also a Twilio auth token's length), SHA-256 git object ids
 * and sha256 digests (64, also a hex key's), sha512 (128). Kept where a word or a path says what they are.
 */
const DIGEST_LENGTHS = new Set([32, 64, 128]);
const HEX_ID_CONTEXT =
  /(?:\b(?:md5|sha\d*|trace|traceparent|span|request|correlation|digest|checksum|hash|etag|object|oid|commit|tree|blob|rev|revision|id)s?\b(?:[^\n\w]{1,3}\w+){0,3}[^\n\w]{1,3}|(?:^|[\s'"=:(])00-|[/#@])$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIGEST_PREFIX = /(?:sha(?:1|224|256|384|512)[:=-]|md5[:=-]|commit[: ]|sha[: ])\s*$/i;

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function highEntropy(token: string): boolean {
  if (UUID.test(token)) return false;
  const core = token.replace(/=+$/, '');
  if (core.length < 24) return false;
  if (!/[A-Za-z]/.test(core) || !/[0-9]/.test(core)) return false;
  if (shannonEntropy(core) < 4.2) return false;
  if (namePieces(core)) return false;
  return !(looksLikeIdentifier(core) && readsAsWords(core));
}

/**
 * A piece of a name or a path that is not random: a number (`20240101123456`), a hex id of 7+ characters (a commit,
 * a digest), a UUID, or a word (`add`, `users`, `Table`, `v2`, `sha256`).
 */
function plainPiece(p: string): boolean {
  if (/^\d+$/.test(p) || UUID.test(p)) return true;
  if (/^[0-9a-f]{7,}$/.test(p) || /^[0-9A-F]{7,}$/.test(p)) return true;
  const m = /^([A-Za-z]+)\d{0,6}$/.exec(p);
  if (!m) return false;
  const w = m[1]!;
  if (!/^(?:[A-Z]?[a-z]+|[A-Z]+)$/.test(w)) return looksLikeIdentifier(p) && readsAsWords(p);
  return w.length <= 3 || readsAsWords(w);
}

/**
 * Whether a token is a name joined from plain pieces by `_` or `-` (`20240101123456_add_users_table`,
 * `release-2024-01-01-build-7f3a9c2e1b`): random base64url almost never splits into such pieces.
 */
function namePieces(token: string): boolean {
  const pieces = token.split(/[_-]+/).filter(Boolean);
  return pieces.length > 1 && pieces.every(plainPiece);
}

/**
 * Whether a `/`-joined token is a path or a URL's path: it follows `://` or a host name, every segment is plain, or
 * at least half of its segments (and two or more) are spelled as words, numbers, ids or names. A base64 secret has a
 * `/` in about one character of 64, and its pieces are random.
 */
function isPath(segments: string[], text: string, start: number): boolean {
  if (/:\/\/[^\s/]*$/.test(text.slice(Math.max(0, start - 256), start))) return true;
  // A host without its scheme (`github.com/org/repo/...`): the token starts at the top-level domain.
  if (
    /^[a-z]{2,6}$/.test(segments[0]!) &&
    /(?:^|[\s(<'"])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.$/i.test(text.slice(Math.max(0, start - 256), start))
  )
    return true;
  const nonEmpty = segments.filter(Boolean);
  if (nonEmpty.every((s) => plainPiece(s) || namePieces(s))) return true;
  // A segment counts when it is three or more characters, not a letter repeated (base64 of zero bytes is `AAAA`),
  // and its words read as words (`Ugw` does not).
  const plain = nonEmpty.filter(
    (s) =>
      s.length >= 3 &&
      !/([A-Za-z])\1\1/.test(s) &&
      (/^\d+$/.test(s) || UUID.test(s) || /^[0-9a-f]{7,}$/.test(s) || namePieces(s) || wordPiece(s)),
  ).length;
  return plain >= 2 && plain * 2 >= segments.length;
}

/**
 * A word segment (`commit`, `Migrations`, `LoginForm`, `utils2`): words of three or more letters in word case, four
 * letters or more in all, digits only at the end, spelled as words. Short or oddly cased pieces of random base64
 * (`cYr`, `Ndm`, `ok3ap`) are not.
 */
function wordPiece(s: string): boolean {
  const m = /^((?:[A-Z]?[a-z]{2,})+)\d{0,4}$/.exec(s);
  if (!m || m[1]!.length < 4) return false;
  const words = m[1]!.split(/(?=[A-Z])/);
  return words.every((w) => w.length >= 3) && readsAsWords(m[1]!);
}

/**
 * The letter pairs of English words: for each letter, the letters that commonly follow it. These 331 pairs make
 * up 99% of the pairs in English prose (measured on the READMEs of this repository's dependencies, 1.9 million
 * pairs); the other 345 are rare in words, and make up about half of the pairs of random letters.
 */
const WORD_PAIRS: Readonly<Record<string, string>> = {
  a: 'bcdfgijklmnprstuvwxy',
  b: 'aeijlorstuy',
  c: 'acehiklorstuy',
  d: 'adegilmorstuy',
  e: 'abcdefghijlmnopqrstvwxy',
  f: 'aefilorstuy',
  g: 'aehilmnorsu',
  h: 'aeilmorstu',
  i: 'abcdefgklmnoprstvxz',
  j: 'aehosv',
  k: 'aeis',
  l: 'abdeijklopstuvy',
  m: 'abdegijlmopsu',
  n: 'abcdefgiklmnopstuvy',
  o: 'abcdefgijklmnoprstuvw',
  p: 'adehilmnoprstuy',
  q: 'u',
  r: 'abcdefghiklmnoprstuvwy',
  s: 'acdehiklmoprstuvwy',
  t: 'acdefhilmnoprstuwy',
  u: 'abcdefgilmnprst',
  v: 'aegio',
  w: 'aehinorsw',
  x: 'aceipt',
  y: 'almnoprstw',
  z: 'aez',
};
const COMMON_PAIRS: ReadonlySet<string> = new Set(
  Object.entries(WORD_PAIRS).flatMap(([a, next]) => [...next].map((b) => a + b)),
);

/**
 * Whether the words of a name are spelled like words: under one letter pair in ten is rare in English, and under a
 * quarter of the letters are in acronyms (runs of up to five capitals, skipped as not words, except in a
 * CONSTANT_NAME). The second test of a name, after looksLikeIdentifier's shape: about one random base64 token in
 * 20,000 has that shape (word-length pieces, each with a vowel), and in a first measure 205 of 205 such tokens
 * failed this test (most had 20-80% rare pairs), while 726 of 740 real names, URLs and paths with digits and the
 * same entropy passed it (the rest were alphabets and URLs of short acronyms and numbers, then redacted). Measured
 * since: no random token of 20 million passes both tests.
 */
function readsAsWords(s: string): boolean {
  const constantCase = s.includes('_');
  let letters = 0;
  let acronyms = 0;
  let pairs = 0;
  let rare = 0;
  for (const run of s.split(/[^A-Za-z]+/)) {
    for (const word of run.split(/(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/)) {
      letters += word.length;
      if (!constantCase && word.length <= 5 && /^[A-Z]+$/.test(word)) {
        acronyms += word.length;
        continue;
      }
      const w = word.toLowerCase();
      for (let i = 1; i < w.length; i++) {
        pairs++;
        if (!COMMON_PAIRS.has(w.slice(i - 1, i + 1))) rare++;
      }
    }
  }
  return pairs > 0 && rare < 0.1 * pairs && acronyms < 0.25 * letters;
}

/**
 * Names made of words (`getUserById2FactorHandler`, `test_user_flow_v2_retry`, `src/components/LoginForm`):
 * split at separators, lower-to-upper and letter-digit boundaries; words average 4+ characters, every letter
 * run has a vowel and digits are few. Random base64 splits into 1-3 character fragments (99th percentile 3.3).
 * An all-lowercase token without separators is never taken for a name (random lowercase+digit keys are).
 * Words are cased as words (`Word`, `word`, an acronym of up to 5 capitals, or capitals in a CONSTANT_NAME):
 * base64 of bytes that are mostly zero is long runs of capitals full of `A`s, which would otherwise pass.
 */
export function looksLikeIdentifier(s: string): boolean {
  const hasSeparator = /[/_+=-]/.test(s);
  if (!hasSeparator && !/[A-Z]/.test(s)) return false;
  const pieces = s.split(/[/_+=-]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])/).filter(Boolean);
  const chars = s.replace(/[/_+=-]/g, '').length;
  if (chars / pieces.length < 4) return false;
  const words = pieces.filter((p) => /^[A-Za-z]{2,}$/.test(p));
  if (words.length === 0 || !words.every((w) => /[aeiouyAEIOUY]/.test(w))) return false;
  // A letter four times running is not a word: it is what base64 of zero bytes looks like ("AAAAAAB").
  if (words.some((w) => /(.)\1{3}/.test(w))) return false;
  const constantCase = s.includes('_');
  const cased = words
    .flatMap((w) => w.split(/(?<=[A-Z])(?=[A-Z][a-z])/))
    .filter((w) => /^[A-Z]?[a-z]+$/.test(w) || (/^[A-Z]+$/.test(w) && (constantCase || w.length <= 5)));
  const letters = words.reduce((n, w) => n + w.length, 0);
  if (cased.reduce((n, w) => n + w.length, 0) < 0.8 * letters) return false;
  return (s.match(/\d/g) ?? []).length / s.length <= 0.2;
}

export interface ScrubOptions {
  /**
   * Also what is a secret only by its look: long random-looking tokens and hex runs (the default, for text from
   * outside). Off for data the server composed, whose ids, paths and digests look random too: the certain shapes
   * (provider formats, key blocks, credentials in URLs, Authorization values, assignments, prose) still apply.
   */
  randomLooking?: boolean;
}

/** Every secret found in `text`, sorted by position, overlaps merged into the earlier finding. */
export function findSecrets(text: string, opts: ScrubOptions = {}): SecretFinding[] {
  if (text.length < 8) return [];
  const found: SecretFinding[] = [];
  for (const rule of RULES) {
    rule.re.lastIndex = 0;
    for (let m = rule.re.exec(text); m !== null; m = rule.re.exec(text)) {
      if (m[0].length === 0) {
        rule.re.lastIndex++;
        continue;
      }
      let secret = m[0];
      let start = m.index;
      if (rule.group === -1) {
        const g = m.findIndex((v, i) => i > 0 && v !== undefined);
        if (g < 0) continue;
        secret = m[g]!;
        start = m.index + m[0].lastIndexOf(secret);
      } else if (rule.group !== undefined) {
        secret = m[rule.group]!;
        start = m.index + m[0].indexOf(secret);
      }
      if (rule.accept && !rule.accept(secret, text, start)) continue;
      found.push({ kind: rule.kind, start, end: start + secret.length });
    }
  }
  if (opts.randomLooking === false) return mergeFindings(found);
  HEX.lastIndex = 0;
  for (let m = HEX.exec(text); m !== null; m = HEX.exec(text)) {
    const before = text.slice(Math.max(0, m.index - 60), m.index);
    if (
      m[0].length === 40 ||
      shannonEntropy(m[0]) < 3 ||
      DIGEST_PREFIX.test(before.slice(-10)) ||
      (DIGEST_LENGTHS.has(m[0].length) &&
        (HEX_ID_CONTEXT.test(before) || /^(?:[/?#]|\.[a-z])/i.test(text.slice(m.index + m[0].length))))
    )
      continue;
    found.push({ kind: 'hex-secret', start: m.index, end: m.index + m[0].length });
  }
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    if (/^[0-9a-fA-F]+$/.test(m[0])) continue; // hex runs are the rule above
    const segments = m[0].split('/');
    if (segments.length > 1 && isPath(segments, text, m.index)) {
      // A path or a URL keeps its structure: only a segment that is random on its own is taken out.
      let at = m.index;
      for (const seg of segments) {
        if (!/^[0-9a-fA-F]+$/.test(seg) && highEntropy(seg))
          found.push({ kind: 'high-entropy', start: at, end: at + seg.length });
        at += seg.length + 1;
      }
      continue;
    }
    if (highEntropy(m[0])) found.push({ kind: 'high-entropy', start: m.index, end: m.index + m[0].length });
  }
  return mergeFindings(found);
}

function mergeFindings(found: SecretFinding[]): SecretFinding[] {
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: SecretFinding[] = [];
  for (const f of found) {
    const last = out[out.length - 1];
    if (last && f.start < last.end) last.end = Math.max(last.end, f.end);
    else out.push({ ...f });
  }
  return out;
}

/** `text` with every secret replaced by `[REDACTED:<kind>]`, and how many were replaced. */
export function scrubText(text: string, opts: ScrubOptions = {}): { text: string; redacted: number; kinds: string[] } {
  const found = findSecrets(text, opts);
  if (found.length === 0) return { text, redacted: 0, kinds: [] };
  let out = '';
  let at = 0;
  for (const f of found) {
    out += `${text.slice(at, f.start)}[REDACTED:${f.kind}]`;
    at = f.end;
  }
  out += text.slice(at);
  return { text: out, redacted: found.length, kinds: [...new Set(found.map((f) => f.kind))].sort() };
}

export interface ScrubReport {
  redacted: number;
  kinds: string[];
}

/**
 * A deep copy of `value` with every string (object values, array items and object keys) scrubbed.
 * Numbers, booleans and null pass through.
 */
export function scrubSecrets<T>(value: T): { value: T; report: ScrubReport } {
  return scrubDeep(value, { keys: true });
}

/**
 * A deep copy of data the server composed (an audit entry's data) with the certain secrets scrubbed from every
 * string value: the last pass before the data is hashed into the chain. Text from outside reached it already
 * scrubbed in full at its way in (a tool's input, the CLI, a spec file, runner output); what the server adds,
 * digests by which the chain binds records, ids, paths of receipts, looks random and must stay as it is, so
 * neither random-looking tokens nor object keys are touched here.
 */
export function scrubStoredData<T>(value: T): { value: T; report: ScrubReport } {
  return scrubDeep(value, { keys: false, randomLooking: false });
}

/**
 * A tool's or command's input with every string value scrubbed, apart from the values of the `verbatim` fields (by
 * name, at any depth): ids, claim tokens and paths name what the server issued or must find, and a redaction would
 * only break them (a random-looking task id is not a credential). Field names are the schema's and stay.
 */
export function scrubInput<T>(value: T, verbatim: ReadonlySet<string>): { value: T; report: ScrubReport } {
  return scrubDeep(value, { keys: false, verbatim });
}

function scrubDeep<T>(
  value: T,
  opts: { keys: boolean; randomLooking?: boolean; verbatim?: ReadonlySet<string> },
): { value: T; report: ScrubReport } {
  const kinds = new Set<string>();
  let redacted = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const r = scrubText(v, { randomLooking: opts.randomLooking });
      redacted += r.redacted;
      for (const k of r.kinds) kinds.add(k);
      return r.text;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v as Record<string, unknown>))
        out[opts.keys ? (walk(k) as string) : k] = opts.verbatim?.has(k) ? inner : walk(inner);
      return out;
    }
    return v;
  };
  const scrubbed = walk(value) as T;
  return { value: scrubbed, report: { redacted, kinds: [...kinds].sort() } };
}
