/**
 * The secret scan of the files a run changed, pure (paths and bytes in, findings out).
 *
 * `scrubText` (secrets.ts) redacts anything that might be a credential before text is stored: there a false
 * positive costs one redacted word. Here a finding blocks completion, so a false positive leaves an honest run
 * with no way forward; every rule therefore asks whether the text is a credential *value*, not merely whether a
 * name sounds like one:
 * - provider formats (AWS, GitHub, Slack, Stripe, JWTs, private key blocks, ...) wherever they appear, unless the
 *   value is visibly a placeholder (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxxxxxx...`, a PEM header with no key under it);
 * - a literal assigned to a secret-named key (`apiKey = "..."`, `DB_PASSWORD=...`, `"token": "..."`) when the
 *   literal looks like a secret: not a call, expression, reference or template (`hash(input)`, `process.env.X`,
 *   `${PASSWORD}`), not prose, a path, a URL, a name or a placeholder (`changeme`, `<your-token>`, `test1234`).
 *   A bare (unquoted) value is a literal only in configuration files (.env, YAML, INI, shell...); in code it is
 *   an expression;
 * - credentials inside URLs and `Authorization: Bearer|Basic` values, by the same test of the value;
 * - obvious encodings, best effort: a base64 blob that decodes to a provider format, and a provider format split
 *   across adjacent or concatenated string literals (`'ghp_' + '...'`, `"AKIA" "..."`).
 *
 * A NUL byte does not hide a file: UTF-16 is decoded, a source file is read around its NULs, and any other binary
 * file is searched for provider formats in its printable runs (`decodeForScan`).
 *
 * A finding can be allowed with a reason: a comment `loki-allow-secret: <reason>` on its line, or alone on the
 * line above. The reason is required (it is what a person reads in the receipt); a marker without one allows
 * nothing.
 */
import { KNOWN_FORMATS, looksLikeIdentifier, scrubText, shannonEntropy, type Rule } from './secrets.js';

export interface ScanFinding {
  kind: string;
  start: number;
  end: number;
  /** 1-based line of `start`. */
  line: number;
  /** The reason of a `loki-allow-secret:` marker that covers this line; null when none does. */
  allowed: string | null;
}

export interface DecodedFile {
  /** The content as text: decoded text, or for a binary file its bytes one character each (latin1). */
  text: string;
  /** True when only the printable runs of `text` are scanned, for provider formats. */
  binary: boolean;
  encoding: 'utf8' | 'utf16le' | 'utf16be' | 'utf8-with-nul' | 'binary';
}

/** The longest allow reason kept; a reason is a sentence, not a document. */
export const MAX_REASON_CHARS = 200;

// ---- decoding ---------------------------------------------------------------------------------------------------

/**
 * Source and text formats: a NUL byte in one of these does not make it binary for the scan (a NUL is an easy way
 * to make git, and a naive scanner, call a file binary while the language still reads the rest of it).
 */
const TEXT_EXT =
  /\.(?:[cm]?[jt]sx?|py[iw]?|go|rs|java|kts?|scala|groovy|gradle|rb|erb|php|cs|fs|vb|c|h|cc|cpp|cxx|hpp|hh|m|mm|swift|dart|lua|pl|pm|r|jl|exs?|erl|hrl|hs|clj[sc]?|elm|sh|bash|zsh|fish|ps1|psm1|bat|cmd|sql|json[c5]?|ya?ml|toml|ini|cfg|conf|cnf|env|properties|xml|html?|css|scss|sass|less|vue|svelte|astro|mdx?|rst|txt|tf|tfvars|hcl|proto|graphql|gql|ipynb|csv|tsv|tpl|j2|njk|hbs|ejs)$/i;
const TEXT_NAME =
  /^(?:\.env(?:\..*)?|\.npmrc|\.pypirc|\.netrc|\.pgpass|Dockerfile.*|Makefile|Gemfile|Rakefile|Procfile)$/i;

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

function isTextPath(path: string): boolean {
  const base = baseName(path);
  return TEXT_EXT.test(base) || TEXT_NAME.test(base);
}

/**
 * The content of a file as the scan reads it. Without a NUL byte in the first 8 KB (git's own test) it is UTF-8.
 * With one, it may be UTF-16 (a byte-order mark, or NULs at every other byte); else a source file is read as
 * UTF-8 with each NUL turned into a space (offsets and lines kept), and anything else is binary.
 */
export function decodeForScan(path: string, data: Uint8Array): DecodedFile {
  const head = data.subarray(0, 8000);
  if (!head.includes(0)) return { text: utf8(data), binary: false, encoding: 'utf8' };
  const utf16 = utf16Order(head);
  if (utf16 === 'le') return { text: new TextDecoder('utf-16le').decode(data), binary: false, encoding: 'utf16le' };
  if (utf16 === 'be') {
    const swapped = new Uint8Array(data.length - (data.length % 2));
    for (let i = 0; i + 1 < data.length; i += 2) {
      swapped[i] = data[i + 1]!;
      swapped[i + 1] = data[i]!;
    }
    return { text: new TextDecoder('utf-16le').decode(swapped), binary: false, encoding: 'utf16be' };
  }
  if (isTextPath(path)) return { text: utf8(data).replace(/\0/g, ' '), binary: false, encoding: 'utf8-with-nul' };
  return {
    text: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1'),
    binary: true,
    encoding: 'binary',
  };
}

const utf8 = (data: Uint8Array) => new TextDecoder('utf-8').decode(data);

function utf16Order(head: Uint8Array): 'le' | 'be' | null {
  if (head[0] === 0xff && head[1] === 0xfe) return 'le';
  if (head[0] === 0xfe && head[1] === 0xff) return 'be';
  const pairs = Math.floor(head.length / 2);
  if (pairs < 4) return null;
  let evenZero = 0;
  let oddZero = 0;
  for (let i = 0; i + 1 < head.length; i += 2) {
    if (head[i] === 0) evenZero++;
    if (head[i + 1] === 0) oddZero++;
  }
  // Mostly-ASCII text in UTF-16 has a zero in one half of nearly every pair and almost never in the other.
  if (oddZero >= 0.4 * pairs && evenZero <= 0.05 * pairs) return 'le';
  if (evenZero >= 0.4 * pairs && oddZero <= 0.05 * pairs) return 'be';
  return null;
}

// ---- the scan ---------------------------------------------------------------------------------------------------

interface Hit {
  kind: string;
  start: number;
  end: number;
}

/** Every secret in a decoded file, sorted by position, each with its line and the allow reason covering it. */
export function scanForSecrets(path: string, file: DecodedFile): ScanFinding[] {
  const { text } = file;
  const hits: Hit[] = [];
  if (file.binary) {
    // Printable runs, as `strings` would show them: a key compiled into an artefact is still a key.
    for (const m of text.matchAll(/[\x20-\x7e\t\r\n]{16,}/g)) hits.push(...knownFormats(m[0], m.index));
  } else {
    // On the same span the first kind pushed is kept, so the more telling kinds come first.
    hits.push(
      ...knownFormats(text, 0),
      ...splitLiterals(text),
      ...base64Blobs(text),
      ...urlCredentials(text),
      ...authorizationValues(text),
      ...namedLiterals(text, path),
    );
  }
  if (hits.length === 0) return [];
  const lines = lineStarts(text);
  const markers = allowMarkers(text, lines);
  return merge(hits).map((h) => {
    const line = lineAt(lines, h.start);
    return { ...h, line, allowed: markers.get(line) ?? null };
  });
}

function merge(hits: Hit[]): Hit[] {
  hits.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Hit[] = [];
  for (const h of hits) {
    const last = out[out.length - 1];
    if (last && h.start < last.end) last.end = Math.max(last.end, h.end);
    else out.push({ ...h });
  }
  return out;
}

// ---- provider formats -------------------------------------------------------------------------------------------

/** Own copies of the shared expressions, so a scan never shares `lastIndex` with scrubText. */
const FORMATS: Rule[] = KNOWN_FORMATS.map((r) => ({ ...r, re: new RegExp(r.re.source, r.re.flags) }));

function knownFormats(text: string, offset: number): Hit[] {
  const out: Hit[] = [];
  for (const rule of FORMATS) {
    for (const m of text.matchAll(rule.re)) {
      if (m[0].length > 0 && plausible(rule.kind, m[0]))
        out.push({ kind: rule.kind, start: offset + m.index, end: offset + m.index + m[0].length });
    }
  }
  return out;
}

/** Words that mark a value as an illustration, whatever its shape. */
const FAKE_WORD = /example|placeholder|change[_-]?me|redacted|dummy|fake|your[_-]|x{4,}|\.\.\./i;

/**
 * Whether a provider-shaped match is a value someone could use: not a placeholder (a word above, one character six
 * times running, or eight characters in alphabet order, which random tokens practically never contain), and for
 * the formats whose prefix alone is common in ordinary text, shaped like the real thing.
 */
function plausible(kind: string, match: string): boolean {
  if (kind === 'private-key') return pemBody(match);
  if (kind === 'jwt') return jwtHeader(match);
  // Of AWS's id prefixes only these are access keys; AIDA, AROA and the rest name users and roles, not secrets.
  if (kind === 'aws-access-key' && !/^(?:AKIA|ASIA|ABIA|ACCA)/.test(match)) return false;
  const body = match.replace(/^[A-Za-z]+[_-](?:(?:live|test|proj|svcacct|admin|ant|api\d+)[_-])?/, '');
  if (FAKE_WORD.test(match) || /(.)\1{5,}/.test(body) || alphabetRun(body)) return false;
  if (kind === 'openai-key' || kind === 'gitlab-token')
    return /\d/.test(body) && /[A-Za-z]/.test(body) && !looksLikeIdentifier(body) && !kebabWords(body);
  if (kind === 'slack-token') return /\d/.test(body);
  return true;
}

/** `some-words-like-a-css-class`: lowercase letter words and numbers joined by dashes or underscores. */
const kebabWords = (s: string) => /^[a-z]+(?:[-_](?:[a-z]+|\d{1,4}))+$/.test(s);

/**
 * Eight characters in alphabet or digit order, in any case (`abcdefgh`, `01234567`, `abCDeFGh`): what people type
 * for a fake key.
 */
function alphabetRun(s: string, length = 8): boolean {
  const lower = s.toLowerCase();
  let run = 1;
  for (let i = 1; i < lower.length; i++) {
    const a = lower.charCodeAt(i - 1);
    const b = lower.charCodeAt(i);
    run = b === a + 1 && /[a-z0-9]/.test(lower[i]!) ? run + 1 : 1;
    if (run >= length) return true;
  }
  return false;
}

/**
 * A PEM block is a key only when key material follows the header: code that recognises a header
 * (`pem.startsWith('-----BEGIN RSA PRIVATE KEY-----')`) and fixtures cut to `MIIE...` are not keys. The material
 * may be written with escaped newlines (`\n` inside a JSON string), as service account files do.
 */
function pemBody(match: string): boolean {
  const after = match.slice(match.indexOf('-----', 5) + 5, match.indexOf('-----', 5) + 400);
  const body = after.replace(/\\[nr]|\s/g, '');
  if (/^Proc-Type:/.test(body)) return true;
  const material = /^[A-Za-z0-9+/=]*/.exec(body)![0];
  // No placeholder-word test here: in 1,600 characters of real key material `xxxx` or `fake` turn up by chance.
  return material.length >= 64 && !/(.)\1{9,}/.test(material);
}

/**
 * A JWT's first part is base64url JSON naming its algorithm (anything else starting `eyJ` is not a token), and its
 * claims are not a placeholder: the token copied into countless tests and docs has `"sub": "1234567890"`.
 */
function jwtHeader(match: string): boolean {
  const [head = '', claims = ''] = match.split('.');
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as unknown;
    if (header === null || typeof header !== 'object' || !('alg' in header || 'typ' in header)) return false;
  } catch {
    return false;
  }
  const payload = Buffer.from(claims, 'base64url').toString('utf8');
  return !FAKE_WORD.test(payload) && !alphabetRun(payload);
}

// ---- values: when a literal is a secret ---------------------------------------------------------------------------

/** Said of human-chosen values only: a random token may contain these letters by chance. */
const WEAK_PLACEHOLDER = /test|mock|sample|demo|secret|pass|token|fixture|lorem|foo|bar|baz|qux|local|todo|fixme/i;

/** `P4ssw0rd`, `p@55word` read as the words they spell, for the placeholder test. */
const unleet = (v: string) =>
  v.replace(/[4@]/g, 'a').replace(/0/g, 'o').replace(/[1!]/g, 'i').replace(/3/g, 'e').replace(/[5$]/g, 's');
/** References and templates: the value is elsewhere. */
const REFERENCE =
  /\$\{|\{\{|#\{|\$\(|%\(|%[sdv]|^\$[A-Za-z_]|^%[A-Za-z_]+%$|^\{[A-Za-z_][\w.]*\}$|^:[A-Za-z_]\w*$|^ENC\[|^(?:vault|env|secret|arn|ref|op|sops|awskms|gcpkms|azurekv):/i;
const FILE_NAME =
  /^[\w.-]*\.(?:json|ya?ml|toml|ini|txt|pem|key|crt|cer|csr|p12|pfx|jks|keystore|env|js|ts|py|rb|go|sh|cfg|conf|gpg|asc|pub|der|db|sqlite)$/i;

/** Random enough that no person chose it: long, high entropy, not a name made of words. */
function randomLooking(v: string): boolean {
  return v.length >= 20 && shannonEntropy(v) >= 3.8 && !looksLikeIdentifier(v);
}

/**
 * Whether a literal value looks like a credential: long enough, not a placeholder, reference, template, URL,
 * path, file name, number, date, version or name, and either random-looking or mixing letters with digits or
 * symbols the way passwords and keys do. Prose (anything with a space) is not a credential: error messages
 * and labels (`"password": "Forgot your password?"`) are the commonest literal under a secret-sounding key.
 */
export function secretLiteral(raw: string, minLength = 8): boolean {
  const v = raw.trim();
  if (v.length < minLength || v.length > 4096 || /\s/.test(v)) return false;
  if (FAKE_WORD.test(v) || /(.)\1{4,}/.test(v) || /^\W+$/.test(v) || /[<>]/.test(v)) return false;
  if (REFERENCE.test(v) || v.includes('://') || /^(?:\/|\.\.?\/|~\/|[A-Za-z]:\\)/.test(v) || FILE_NAME.test(v))
    return false;
  if (/^[\d.:,/+-]+$/.test(v) || /^v?\d+(?:\.\d+)+(?:[-+][\w.]+)?$/.test(v)) return false;
  // Code, not a value: a call (`url('./icon.png')`), quotes inside, or a regular expression (`[^\W\d]\w*`).
  if (/\w\(|["'`]|\\[wdsbWDSB]|\[\^|\(\?/.test(v)) return false;
  // Punctuation at the edges aside (`?InterpolationInJSX`, `PassWordMustBeAtLeast6Chars.`), is it a name?
  const core = v.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  // `storage_v1_client`, `api.v2.token-name`: lowercase words and short numbers joined by separators.
  const name = looksLikeIdentifier(core) || /^[a-z]+(?:[_.-](?:[a-z]+|v?\d{1,3}))+$/.test(core);
  const random = !name && randomLooking(v);
  // A person's choice (not random) is a placeholder when it spells one, or runs four keys in order (`abcd1234`).
  if (!random && (WEAK_PLACEHOLDER.test(v) || WEAK_PLACEHOLDER.test(unleet(v)) || alphabetRun(v, 4))) return false;
  // Letters only: a word, a name (`HEADER.PAYLOAD.SIGNATURE`), or if random and mixed-case a token.
  if (/^[A-Za-z._:/-]+$/.test(core)) return random && /[a-z]/.test(core) && /[A-Z]/.test(core);
  if (name) return false;
  if (!/[A-Za-z]/.test(v)) return false;
  return shannonEntropy(v) >= (v.length < 16 ? 2.5 : 3);
}

/**
 * A value under a secret name. A base64 value that decodes to text is judged by that text: `aHVudGVyMjI=` is a
 * password, while `eyJOZXh0VG9rZW4iOiBudWxsfQ==` is JSON (a pagination cursor); a random token does not decode to
 * text, so it keeps the verdict of its own shape.
 */
function namedSecret(v: string): boolean {
  if (!secretLiteral(v)) return false;
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) return true;
  const decoded = fromBase64(v);
  return decoded === null || secretLiteral(decoded, 6) || knownFormats(decoded, 0).length > 0;
}

// ---- secret-named keys --------------------------------------------------------------------------------------------

/**
 * A token that is not a credential: pagination and idempotency tokens of APIs (`NextToken`, `ClientToken`,
 * `LockToken`), CSRF and OAuth state values, and the tokens of lexers and parsers (`lastSignificantToken`).
 */
const NOT_CREDENTIAL_TOKEN = new Set([
  'next',
  'prev',
  'previous',
  'continuation',
  'page',
  'pagination',
  'cursor',
  'marker',
  'sync',
  'change',
  'lock',
  'idempotency',
  'client',
  'request',
  'forward',
  'backward',
  'update',
  'lifecycle',
  'retry',
  'poll',
  'resume',
  'csrf',
  'xsrf',
  'state',
  'nonce',
  'cancel',
  'cancellation',
  'lexer',
  'parser',
  'syntax',
  'ast',
  'css',
  'design',
  'significant',
  'public',
  'current',
  'peek',
  'lookahead',
  'first',
  'last',
  'start',
  'end',
  'special',
  'pad',
  'eos',
  'bos',
  'unk',
  'sep',
  'mask',
]);

/** Words that make a name secret by themselves (compared lowercased, after splitting camelCase and snake_case). */
const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'passcode',
  'secret',
  'secrets',
  'token',
  'apikey',
  'credential',
  'credentials',
  'privatekey',
  'secretkey',
  'accesskey',
  'signingkey',
  'encryptionkey',
  'masterkey',
  'sessionkey',
  'clientsecret',
  'authkey',
  'authtoken',
  'accesstoken',
  'refreshtoken',
]);
/** `key` is secret only after one of these (`api_key`, `x-api-key`, `SECRET_KEY`); a bare `key` is a map key. */
const KEY_QUALIFIERS = new Set([
  'api',
  'access',
  'private',
  'secret',
  'signing',
  'sign',
  'encryption',
  'enc',
  'master',
  'auth',
  'session',
  'consumer',
  'client',
  'app',
  'account',
  'service',
  'subscription',
  'license',
  'licence',
  'admin',
  'deploy',
  'ssh',
  'hmac',
  'jwt',
  'aes',
  'webhook',
]);
/**
 * What may follow the secret word in a name that still holds the secret itself (`SECRET_KEY_BASE`,
 * `API_TOKEN_PROD`, `password2`). Anything else names something about the secret: `passwordHash`, `tokenCount`,
 * `secretName`, `token_url`, `PASSWORD_MIN_LENGTH`.
 */
const VALUE_SUFFIXES = new Set([
  'value',
  'val',
  'str',
  'string',
  'hex',
  'b64',
  'base64',
  'raw',
  'plain',
  'plaintext',
  'encoded',
  'bytes',
  'data',
  'pem',
  'key',
  'base',
  'secret',
  'token',
  'pass',
  'password',
  'prod',
  'production',
  'dev',
  'development',
  'staging',
  'stage',
  'live',
  'test',
  'local',
  'default',
  'old',
  'new',
  'current',
  'primary',
  'secondary',
  'backup',
  'admin',
  'root',
  'user',
]);

function nameWords(name: string): string[] {
  const last =
    name
      .replace(/^[-$@:]+/, '')
      .split('.')
      .filter(Boolean)
      .pop() ?? '';
  return last
    .split(/[_\-$]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** True when a name holds a secret value: a secret word, followed only by words that still name the value. */
export function isSecretName(name: string): boolean {
  const words = nameWords(name);
  let at = -1;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === 'token' && i > 0 && NOT_CREDENTIAL_TOKEN.has(words[i - 1]!)) continue;
    if (SECRET_WORDS.has(w) || (w === 'key' && i > 0 && KEY_QUALIFIERS.has(words[i - 1]!))) at = i;
  }
  if (at < 0) return false;
  return words.slice(at + 1).every((w) => VALUE_SUFFIXES.has(w) || /^v?\d+$/.test(w));
}

/** Files where an unquoted value is a literal (`KEY=value`, `key: value`); in code it is an expression. */
const BARE_LITERALS =
  /(?:^\.env(?:\..*)?|\.(?:env|ya?ml|ini|cfg|conf|cnf|properties|toml|sh|bash|zsh|ksh|tfvars|hcl|service)|^\.npmrc|^\.pypirc|^Dockerfile.*)$/i;

const NAME_CHAR = /[\w$.-]/;
const SECRET_HINT = /pass|pwd|secret|token|key|credential/gi;

/**
 * Literals assigned to secret-named keys, in the assignment spellings of the common languages and formats:
 * `name = v`, `name := v`, `name: v`, `"name": v`, `'name' => v`, `name: Type = v`, `--name=v`, `<name>v</name>`.
 * Found from the secret word outwards (not by a regex over every name), so the scan stays linear.
 */
function namedLiterals(text: string, path: string): Hit[] {
  const bare = BARE_LITERALS.test(baseName(path));
  const go = path.endsWith('.go');
  const out: Hit[] = [];
  let done = -1;
  for (const m of text.matchAll(SECRET_HINT)) {
    if (m.index < done) continue;
    let s = m.index;
    while (s > 0 && m.index - s < 100 && NAME_CHAR.test(text[s - 1]!)) s--;
    let e = m.index + m[0].length;
    while (e < text.length && e - m.index < 100 && NAME_CHAR.test(text[e]!)) e++;
    done = e;
    const name = text.slice(s, e).replace(/[.-]+$/, '');
    e = s + name.length;
    if (!isSecretName(name)) continue;
    const value = valueAfter(text, s, e, { bare, go });
    if (value && namedSecret(value.text)) out.push({ kind: 'assignment', start: value.start, end: value.end });
  }
  return out;
}

interface Value {
  text: string;
  start: number;
  end: number;
}

/** The literal assigned to the name at text[s, e), or null when what follows is not an assignment of a literal. */
function valueAfter(text: string, s: number, e: number, opts: { bare: boolean; go: boolean }): Value | null {
  const before = text[s - 1];
  // <password>value</password>
  if (before === '<' && text[e] === '>') {
    const close = text.indexOf('<', e + 1);
    if (close < 0 || close - e > 512) return null;
    return { text: text.slice(e + 1, close), start: e + 1, end: close };
  }
  let i = e;
  const quoted = (before === '"' || before === "'" || before === '`') && text[i] === before;
  if (quoted) i++;
  if (quoted && text[i] === ']') i++; // obj['password'] = ...
  const keyLike = quoted || before === ':'; // a quoted key or a Ruby symbol may use `=>`
  i = skipBlanks(text, i);
  let op: string | null = null;
  if (text.startsWith(':=', i)) op = ':=';
  else if (text.startsWith('=>', i)) op = keyLike ? '=>' : null;
  else if (text[i] === '=') op = text[i + 1] === '=' || text[i - 1] === '!' ? null : '=';
  else if (text[i] === ':' && text[i + 1] !== ':') {
    // `name: Type = value` (TypeScript, Python, Kotlin): the value is after the `=`; else `name: value`.
    // No commas in the type: `(token: string, fallback = "...")` assigns to `fallback`, not to `token`.
    const typed = /^:[ \t]*[A-Za-z_][\w.[\]<>| ?]{0,80}?[ \t]*=(?![=>])/.exec(text.slice(i, i + 100));
    if (typed) i += typed[0].length - 1;
    op = typed ? '=' : ':';
  } else if (/#[ \t]*define[ \t]+$/.test(text.slice(Math.max(0, s - 40), s))) {
    op = ''; // C: #define API_KEY "..."
  } else if (opts.go) {
    // Go: `var name Type = value`
    const typed = /^[A-Za-z_][\w.[\]*]{0,60}[ \t]*=(?!=)/.exec(text.slice(i, i + 80));
    if (typed) {
      i += typed[0].length - 1;
      op = '=';
    }
  }
  if (op === null) return null;
  i = skipBlanks(text, i + op.length);
  return literalAt(text, i, opts.bare);
}

function skipBlanks(text: string, i: number): number {
  while (text[i] === ' ' || text[i] === '\t') i++;
  return i;
}

/** The string literal starting at `i` (with an optional b/r/u/@ prefix), or in config files a bare value. */
function literalAt(text: string, i: number, bare: boolean): Value | null {
  let q = i;
  if (/[bBrRuU@]/.test(text[q] ?? '') && /["']/.test(text[q + 1] ?? '')) q++;
  else if (/[fF]/.test(text[q] ?? '') && /["']/.test(text[q + 1] ?? '')) return null; // f-string: a template
  const quote = text[q];
  if (quote === '"' || quote === "'" || quote === '`') {
    if (text.startsWith(quote.repeat(3), q)) return null; // a docstring or block, not a value
    let j = q + 1;
    while (j < text.length && text[j] !== quote && text[j] !== '\n' && j - q < 4096) j += text[j] === '\\' ? 2 : 1;
    if (text[j] !== quote) return null;
    return { text: text.slice(q + 1, j), start: q + 1, end: j };
  }
  if (!bare) return null;
  // YAML/INI/.env bare values; a leading sigil is a reference, tag, anchor, block or structure, not a literal.
  if (/[$!*&{[|>%@]/.test(text[i] ?? '')) return null;
  const m = /^[^\s#;,'"]+/.exec(text.slice(i, i + 4096));
  if (!m) return null;
  return { text: m[0], start: i, end: i + m[0].length };
}

// ---- URLs and Authorization headers -------------------------------------------------------------------------------

const LOCAL_HOST =
  /^(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|\[?::1\]?|host\.docker\.internal|[\w.-]*\.(?:example|test|local|invalid|localhost)|example\.(?:com|org|net))$/i;

/** `scheme://user:password@host`: a finding when the password looks like one and the host is not a local one. */
function urlCredentials(text: string): Hit[] {
  const out: Hit[] = [];
  const re = /\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}:\/\/([^\s/:@'"<>]{1,256}):([^\s/@'"<>]{1,256})@([^\s/:'"<>?#]*)/g;
  for (const m of text.matchAll(re)) {
    if (LOCAL_HOST.test(m[3]!) || !secretLiteral(decodeURIComponentSafe(m[2]!), 6)) continue;
    const start = m.index + m[0].indexOf(m[1]!);
    out.push({ kind: 'url-credentials', start, end: start + m[1]!.length + 1 + m[2]!.length });
  }
  return out;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `Bearer <value>`, `Basic <base64 of user:password>`, and `Authorization: Token <value>`. */
function authorizationValues(text: string): Hit[] {
  const out: Hit[] = [];
  for (const m of text.matchAll(/\b(Bearer|Basic|Token)[ \t]+([A-Za-z0-9._~+/-]{12,}=*)/gi)) {
    const scheme = m[1]!.toLowerCase();
    const value = m[2]!;
    if (scheme === 'token' && !/authorization/i.test(text.slice(Math.max(0, m.index - 40), m.index))) continue;
    let secret: boolean;
    if (scheme === 'basic') {
      const pair = fromBase64(value);
      const colon = pair?.indexOf(':') ?? -1;
      secret = pair !== null && colon > 0 ? secretLiteral(pair.slice(colon + 1), 6) : secretLiteral(value);
    } else secret = secretLiteral(value);
    if (secret) {
      const start = m.index + m[0].length - value.length;
      out.push({ kind: 'authorization', start, end: start + value.length });
    }
  }
  return out;
}

/**
 * Decoded bytes as text when they are text: UTF-8 without control characters (`Basic` of a non-ASCII
 * user:password), or nearly all printable ASCII; null for anything else (the bytes of a random key).
 */
function bytesAsText(bytes: Uint8Array): string | null {
  if (bytes.length === 0) return null;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (![...text].some((ch) => control(ch.charCodeAt(0)))) return text;
  } catch {
    // not UTF-8: judge the bytes one by one
  }
  let ok = 0;
  for (const c of bytes) if (c < 0x80 && !control(c)) ok++;
  return ok >= 0.9 * bytes.length ? Buffer.from(bytes).toString('latin1') : null;
}

/** A control character other than tab, newline, vertical tab, form feed and carriage return. */
const control = (c: number) => (c < 0x20 && (c < 9 || c > 13)) || c === 0x7f;

const fromBase64 = (s: string) => bytesAsText(Buffer.from(s, 'base64'));

// ---- encodings ----------------------------------------------------------------------------------------------------

const LITERAL = String.raw`"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\`(?:[^\`\\$]|\\.)*\``;
/** Two or more string literals joined by `+` (JS, Python, Java...), `..` (Lua), `.` (PHP), `||` (SQL) or nothing. */
const CHAIN = new RegExp(`(?:${LITERAL})(?:\\s*(?:(?:\\+|\\.\\.?|\\|\\|)\\s*)?(?:${LITERAL}))+`, 'g');
const ONE_LITERAL = new RegExp(LITERAL, 'g');

/** A provider format assembled from pieces: found in the joined text, across at least one join. */
function splitLiterals(text: string): Hit[] {
  const out: Hit[] = [];
  for (const chain of text.matchAll(CHAIN)) {
    const pieces: string[] = [];
    const bounds: number[] = [];
    let joined = 0;
    for (const lit of chain[0].matchAll(ONE_LITERAL)) {
      const inner = lit[0].slice(1, -1);
      pieces.push(inner);
      joined += inner.length;
      bounds.push(joined);
    }
    bounds.pop();
    for (const h of knownFormats(pieces.join(''), 0)) {
      if (bounds.some((b) => h.start < b && b < h.end))
        out.push({ kind: `split:${h.kind}`, start: chain.index, end: chain.index + chain[0].length });
    }
  }
  return out;
}

/** A base64 (or base64url) blob whose decoded text holds a provider format (`LS0tLS1CRUdJTi...` is a PEM key). */
function base64Blobs(text: string): Hit[] {
  const out: Hit[] = [];
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{24,}={0,2}/g)) {
    // Node's base64 decoder reads both alphabets (+/ and -_).
    const decoded = fromBase64(m[0]);
    if (!decoded) continue;
    const inner = knownFormats(decoded, 0);
    if (inner.length > 0) out.push({ kind: `base64:${inner[0]!.kind}`, start: m.index, end: m.index + m[0].length });
  }
  return out;
}

// ---- allow markers ------------------------------------------------------------------------------------------------

const MARKER = 'loki-allow-secret';
/** Comment openers of the common languages; the marker counts only inside a comment. */
const OPENER = /\/\/|\/\*|<!--|#|--|;|%|\{-|\(\*|\bREM\b|^[ \t]*\*/i;

/**
 * The allow reason for each line a marker covers: its own line, and the next line when the marker's comment is
 * alone on its line. The reason is scrubbed (it is stored and shown) and capped; a marker with no reason (no
 * word of three letters) covers nothing.
 */
function allowMarkers(text: string, lines: number[]): Map<number, string> {
  const out = new Map<number, string>();
  for (let at = text.indexOf(MARKER); at >= 0; at = text.indexOf(MARKER, at + MARKER.length)) {
    const line = lineAt(lines, at);
    const lineStart = lines[line - 1]!;
    const lineEnd = text.indexOf('\n', at) < 0 ? text.length : text.indexOf('\n', at);
    const before = text.slice(lineStart, at);
    const opener = OPENER.exec(before);
    if (!opener) continue;
    const reason = text
      .slice(at + MARKER.length, lineEnd)
      .replace(/^[ \t]*:?/, '')
      .replace(/(?:\*\/|-->|-\}|\*\))\s*$/, '')
      .trim();
    if (!/\p{L}{3,}/u.test(reason)) continue;
    const kept = scrubText(reason).text.slice(0, MAX_REASON_CHARS);
    out.set(line, kept);
    // A comment alone on its line speaks for the line below.
    if (before.slice(0, opener.index).trim() === '') out.set(line + 1, kept);
  }
  return out;
}

// ---- lines --------------------------------------------------------------------------------------------------------

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return starts;
}

/** 1-based line holding `offset`. */
function lineAt(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
