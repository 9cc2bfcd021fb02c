/**
 * Secret detection and scrubbing, pure (no I/O). Memory items, solutions, audit data and check output pass through
 * `scrubText`/`scrubSecrets` before anything is stored. The scan of a run's changed files, whose findings block
 * completion, is secret-scan.ts: it shares the provider formats below and is far stricter about everything else.
 *
 * What counts as a secret:
 * - provider formats: AWS access key ids, GitHub / GitLab / Slack / Stripe / OpenAI / Anthropic / Google tokens,
 *   npm tokens, Slack webhooks, JWTs, PEM / OpenSSH / PGP private key blocks;
 * - `Authorization: Bearer|Basic ...`, credentials inside URLs (`scheme://user:pass@host`);
 * - assignments to secret-looking names (`password=...`, `DB_SECRET: ...`, `"apiKey": "..."`): the value only;
 * - high-entropy tokens: 24+ characters of base64/base64url with letters and digits and Shannon entropy of at
 *   least 4.2 bits per character (random base64 has about 4.5-5; identifiers and words stay well below 4), and
 *   hex runs of 32+ characters.
 *
 * Deliberately kept: 40-hex git commit SHAs (memories cite commits), digests introduced as `sha256:`/`sha1:`/
 * `sha512-`, UUIDs, file paths and ordinary words. A false positive costs a redacted word; a false negative
 * leaks a credential into files that are read back into a model's context, so the rules err towards redacting.
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
];

const RULES: Rule[] = [
  ...KNOWN_FORMATS,
  {
    kind: 'url-credentials',
    re: /\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}:\/\/([^\s/:@'"<>]{1,256}:[^\s/@'"<>]{1,256})@/g,
    group: 1,
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
      if (isPlaceholder(secret) || /^\d{1,11}$/.test(secret)) return false;
      // Prose such as "token: expired" or "password: required": a bare, short, all-letter word after a colon.
      const before = text.slice(Math.max(0, start - 3), start);
      const quoted = text[start - 1] === '"' || text[start - 1] === "'";
      if (!quoted && before.includes(':') && /^[a-zA-Z-]{1,15}$/.test(secret)) return false;
      return true;
    },
  },
];

const PLACEHOLDER =
  /^(?:\*+|x+|\.\.\.|<[^>]*>|\$\{[^}]*\}?|\$[A-Z_][A-Z0-9_]*|%[A-Z_]+%|\{\{[^}]*\}\}|process\.env\.[A-Za-z0-9_]+|os\.environ.*|env\(.*|\[REDACTED.*|null|none|undefined|true|false|changeme|redacted|your[_-].*|example|required|optional|string)$/i;

function isPlaceholder(s: string): boolean {
  return PLACEHOLDER.test(s.trim());
}

const TOKEN = /[A-Za-z0-9+/_=-]{24,}/g;
const HEX = /\b[0-9a-fA-F]{32,}\b/g;
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
  return !looksLikeIdentifier(core);
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

/** Every secret found in `text`, sorted by position, overlaps merged into the earlier finding. */
export function findSecrets(text: string): SecretFinding[] {
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
  HEX.lastIndex = 0;
  for (let m = HEX.exec(text); m !== null; m = HEX.exec(text)) {
    if (
      m[0].length === 40 ||
      shannonEntropy(m[0]) < 3 ||
      DIGEST_PREFIX.test(text.slice(Math.max(0, m.index - 10), m.index))
    )
      continue;
    found.push({ kind: 'hex-secret', start: m.index, end: m.index + m[0].length });
  }
  TOKEN.lastIndex = 0;
  for (let m = TOKEN.exec(text); m !== null; m = TOKEN.exec(text)) {
    if (/^[0-9a-fA-F]+$/.test(m[0])) continue; // hex runs are the rule above
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
export function scrubText(text: string): { text: string; redacted: number; kinds: string[] } {
  const found = findSecrets(text);
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
  const kinds = new Set<string>();
  let redacted = 0;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const r = scrubText(v);
      redacted += r.redacted;
      for (const k of r.kinds) kinds.add(k);
      return r.text;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, inner] of Object.entries(v as Record<string, unknown>)) out[walk(k) as string] = walk(inner);
      return out;
    }
    return v;
  };
  const scrubbed = walk(value) as T;
  return { value: scrubbed, report: { redacted, kinds: [...kinds].sort() } };
}
