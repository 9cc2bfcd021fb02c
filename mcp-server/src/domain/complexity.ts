/**
 * Complexity-tier detection, as pure functions over signals taken from the spec and the repository.
 * The thresholds are data so they can be read, tested and tuned in one place.
 */
import type { Tier } from './phases.js';

export interface SpecSignals {
  words: number;
  /** Bullet, checkbox and numbered items: a proxy for the number of features. */
  features: number;
  /** Markdown headings (or top-level keys/paths for structured specs). */
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
  simple: { maxWords: 200, maxFeatures: 5, maxSections: 3, maxSourceFiles: 5 },
  complex: { minWords: 1000, minFeatures: 15, minSections: 10, minSourceFiles: 50, minIntegrations: 2 },
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
  if (spec.features >= c.minFeatures) complexReasons.push(`spec lists ${spec.features} items (>= ${c.minFeatures})`);
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
    spec.sections <= s.maxSections &&
    repo.sourceFiles <= s.maxSourceFiles &&
    spec.integrations.length === 0;
  if (isSimple) {
    return {
      tier: 'simple',
      reasons: [
        `small spec (${spec.words} words, ${spec.features} items, ${spec.sections} sections) and ${repo.sourceFiles} source files`,
      ],
    };
  }
  const reasons = [
    `spec of ${spec.words} words, ${spec.features} items, ${spec.sections} sections; ${repo.sourceFiles} source files`,
  ];
  if (spec.integrations.length === 1) reasons.push(`one integration: ${spec.integrations[0]}`);
  return { tier: 'standard', reasons };
}

/** Signals from spec text. Markdown is read structurally; other text is counted as prose. */
export function specSignals(text: string): SpecSignals {
  const lines = text.split(/\r?\n/);
  let inFence = false;
  let features = 0;
  let sections = 0;
  for (const line of lines) {
    if (/^\s*(```|~~~)/.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (inFence) continue;
    if (/^#{1,6}\s+\S/.test(line)) sections++;
    else if (/^\s*([-*+]|\d+[.)])\s+\S/.test(line)) features++;
  }
  const words = (text.match(/[\p{L}\p{N}][\p{L}\p{N}'_-]*/gu) ?? []).length;
  const lower = text.toLowerCase();
  const integrations = INTEGRATION_TERMS.filter((t) => new RegExp(`(^|[^a-z0-9])${t}([^a-z0-9]|$)`).test(lower));
  return { words, features, sections, integrations: [...integrations] };
}
