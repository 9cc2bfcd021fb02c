/**
 * Complexity-tier detection, as pure functions over signals taken from the spec and the repository.
 * The thresholds are data so they can be read, tested and tuned in one place.
 *
 * Calibrated on the spec corpus (tests/fixtures/specs/corpus, see tests/spec-corpus.test.ts): the signal that
 * tracks the work is the number of requirements the spec reader finds, not headings or words (a user-story spec
 * of five stories has a heading per story and criteria under each). Up to six requirements on an empty or small
 * repository is simple: BOOTSTRAP, DEVELOPMENT, QA, with no empty discovery or architecture phases to walk.
 */
import type { Tier } from './phases.js';
import { tasksFromSpec } from './spec-tasks.js';

export interface SpecSignals {
  words: number;
  /** Requirements: the tasks the spec reader finds (list items, table rows, stories, must-sentences, operations). */
  features: number;
  /** Top-level Markdown headings (depth 1 and 2). */
  sections: number;
  /** External integrations named in the spec (payments, auth providers, cloud services...). */
  integrations: string[];
}

export interface RepoSignals {
  /** Source files in the project (capped by the scanner). */
  sourceFiles: number;
  /** docker-compose, Kubernetes manifests, Terraform or Helm present. */
  containerOrInfra: string[];
}

export const COMPLEXITY_THRESHOLDS = {
  simple: { maxWords: 800, maxFeatures: 6, maxSourceFiles: 20 },
  complex: { minWords: 2500, minFeatures: 20, minSections: 10, minSourceFiles: 50, minIntegrations: 2 },
} as const;

/** Words that name an external integration (matched as whole words, case-insensitively). */
export const INTEGRATION_TERMS = [
  'oauth',
  'saml',
  'sso',
  'oidc',
  'stripe',
  'paypal',
  'twilio',
  'sendgrid',
  'aws',
  's3',
  'gcp',
  'azure',
  'firebase',
  'supabase',
  'kafka',
  'rabbitmq',
  'redis',
  'elasticsearch',
  'graphql',
  'webhook',
  'webhooks',
  'openai',
  'anthropic',
  'salesforce',
  'shopify',
  'kubernetes',
  'terraform',
] as const;

export interface TierDecision {
  tier: Tier;
  reasons: string[];
}

export function classifyComplexity(spec: SpecSignals, repo: RepoSignals): TierDecision {
  const c = COMPLEXITY_THRESHOLDS.complex;
  const complexReasons: string[] = [];
  if (spec.words >= c.minWords) complexReasons.push(`spec has ${spec.words} words (>= ${c.minWords})`);
  if (spec.features >= c.minFeatures)
    complexReasons.push(`spec states ${spec.features} requirements (>= ${c.minFeatures})`);
  if (spec.sections >= c.minSections) complexReasons.push(`spec has ${spec.sections} sections (>= ${c.minSections})`);
  if (repo.sourceFiles >= c.minSourceFiles)
    complexReasons.push(`repository has ${repo.sourceFiles} source files (>= ${c.minSourceFiles})`);
  if (spec.integrations.length >= c.minIntegrations)
    complexReasons.push(`spec names integrations: ${spec.integrations.join(', ')}`);
  if (repo.containerOrInfra.length > 0)
    complexReasons.push(`infrastructure files: ${repo.containerOrInfra.join(', ')}`);
  if (complexReasons.length > 0) return { tier: 'complex', reasons: complexReasons };

  const s = COMPLEXITY_THRESHOLDS.simple;
  const isSimple =
    spec.words <= s.maxWords &&
    spec.features <= s.maxFeatures &&
    repo.sourceFiles <= s.maxSourceFiles &&
    spec.integrations.length === 0;
  if (isSimple) {
    return {
      tier: 'simple',
      reasons: [
        `small spec (${spec.features} requirement(s), ${spec.words} words) and ${repo.sourceFiles} source file(s)`,
      ],
    };
  }
  const reasons = [
    `spec of ${spec.features} requirements, ${spec.words} words, ${spec.sections} sections; ${repo.sourceFiles} source files`,
  ];
  if (spec.integrations.length === 1) reasons.push(`one integration: ${spec.integrations[0]}`);
  return { tier: 'standard', reasons };
}

/**
 * Signals from spec text, read by the same reader that seeds the tasks (a spec that does not parse is refused
 * before its tier matters; here it counts as one requirement).
 */
export function specSignals(text: string, extension = '.md'): SpecSignals {
  let features = 1;
  let prose = text;
  let sections = 0;
  try {
    const spec = tasksFromSpec(text, extension);
    // The reader's own "meet the acceptance criteria of X" tasks gather criteria; they are not requirements.
    features = spec.tasks.filter((t) => !/^Meet the acceptance criteria of /.test(t.title)).length;
    sections = spec.sections;
    // Structured specs are counted by their content, not their keys and punctuation.
    if (spec.kind !== 'markdown' && spec.kind !== 'text')
      prose = spec.tasks.map((t) => [t.title, t.description ?? '', ...(t.acceptance ?? [])].join(' ')).join(' ');
  } catch {
    /* refused at start; counted as one requirement here */
  }
  const words = (prose.match(/[\p{L}\p{N}][\p{L}\p{N}'_-]*/gu) ?? []).length;
  // In a structured spec, integrations are named in its content, not its keys (an OpenAPI `webhooks` field).
  const lower = prose.toLowerCase();
  const integrations = INTEGRATION_TERMS.filter((t) => new RegExp(`(^|[^a-z0-9])${t}([^a-z0-9]|$)`).test(lower));
  return { words, features, sections, integrations: [...integrations] };
}
