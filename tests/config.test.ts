/** Configuration: defaults, config.yaml, LOKI_* overrides, sources, and errors that name the fix. */
import { describe, expect, it } from 'vitest';
import { resolveConfig, typedConfig } from '../mcp-server/src/config/load.js';
import { SETTINGS } from '../mcp-server/src/config/settings.js';

describe('resolveConfig', () => {
  it('uses the defaults of the seeds when nothing is set', () => {
    const c = resolveConfig(undefined, {});
    expect(c.problems).toEqual([]);
    const t = typedConfig(c);
    expect(t).toMatchObject({
      maxRetries: 5,
      maxIterations: 1000,
      complexity: 'auto',
      promptInjection: false,
      budgetLimitUsd: null,
    });
    expect(t.council).toMatchObject({
      enabled: true,
      size: 3,
      threshold: 2,
      checkInterval: 5,
      minIterations: 3,
      stagnationLimit: 5,
    });
    for (const s of SETTINGS) expect(c.sources.get(s.key)).toBe('default');
  });

  it('reads config.yaml and lets LOKI_* override it, remembering each source', () => {
    const yaml = 'council:\n  size: 5\n  threshold: 4\nchecks:\n  test: npm test\nlimits:\n  maxRetries: 3\n';
    const c = resolveConfig(yaml, {
      LOKI_MAX_RETRIES: '7',
      LOKI_ALLOWED_PATHS: 'src, tests ,',
      LOKI_PROMPT_INJECTION: 'TRUE',
      LOKI_BUDGET_LIMIT: '12.5',
    });
    expect(c.problems).toEqual([]);
    const t = typedConfig(c);
    expect(t.council.size).toBe(5);
    expect(t.checks.test).toBe('npm test');
    expect(t.maxRetries).toBe(7);
    expect(t.guard.allowedPaths).toEqual(['src', 'tests']);
    expect(t.promptInjection).toBe(true);
    expect(t.budgetLimitUsd).toBe(12.5);
    expect(c.sources.get('council.size')).toBe('.loki/config.yaml');
    expect(c.sources.get('limits.maxRetries')).toBe('env LOKI_MAX_RETRIES');
    expect(c.sources.get('council.enabled')).toBe('default');
  });

  it('ignores empty environment variables', () => {
    expect(resolveConfig(undefined, { LOKI_MAX_RETRIES: '' }).sources.get('limits.maxRetries')).toBe('default');
  });

  it.each([
    ['council:\n  sise: 4\n', /unknown setting "council.sise" \(did you mean "council.size"\?\)/],
    ['limits:\n  maxRetries: lots\n', /limits.maxRetries must be a number/],
    ['limits:\n  maxRetries: 2.5\n', /whole number/],
    ['limits:\n  maxRetries: 0\n', /at least 1/],
    ['run:\n  complexity: huge\n', /one of auto, simple, standard, complex/],
    ['guard:\n  allowedPaths: src\n', /list of strings/],
    ['council: [1, 2\n', /not valid YAML/],
    ['- a\n- b\n', /must be a mapping/],
    ['council:\n  threshold: 1\n', /threshold 1 .* may only be tightened/],
    ['council:\n  size: 6\n  threshold: 3\n', /between 4 and 6/],
    ['council:\n  size: 3\n  threshold: 4\n', /between 2 and 3/],
  ])('reports %j', (yaml, message) => {
    const c = resolveConfig(yaml, {});
    expect(c.problems.join('\n')).toMatch(message);
  });

  it.each([
    ['LOKI_COUNCIL_SIZE', 'three', /LOKI_COUNCIL_SIZE="three": council.size must be a number/],
    ['LOKI_COUNCIL_ENABLED', 'maybe', /true or false/],
    ['LOKI_COMPLEXITY', 'epic', /one of/],
    ['LOKI_COUNCIL_THRESHOLD', '1', /may only be tightened/],
    ['LOKI_LEASE_MINUTES', '-5', /at least/],
  ])('reports a bad %s', (name, value, message) => {
    const c = resolveConfig(undefined, { [name]: value });
    expect(c.problems.join('\n')).toMatch(message);
    expect(c.problems.join('\n')).toMatch(/unset it or set a valid value|tightened/);
  });

  it('keeps valid values when another setting is broken', () => {
    const c = resolveConfig('limits:\n  maxRetries: 9\n  maxIterations: many\n', {});
    expect(c.values.get('limits.maxRetries')).toBe(9);
    expect(c.values.get('limits.maxIterations')).toBe(1000);
    expect(c.problems).toHaveLength(1);
  });
});
