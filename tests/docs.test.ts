/** The generated reference pages match the code, and the README keeps its two first-screen commands true. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference, phasesReference, toolReference } from '../mcp-server/src/docs/reference.js';
import { EXIT_CRITERIA, PHASES, TIER_PHASES, TIERS } from '../mcp-server/src/domain/phases.js';
import { ALL_TOOLS } from '../mcp-server/src/tools/index.js';
import { REPO_ROOT, cleanEnv } from './helpers.js';

const read = (rel: string) => fs.readFileSync(path.join(REPO_ROOT, rel), 'utf8');

describe('generated docs', () => {
  it('docs/tools.md is generated from the registered tools (run `npm run docs` after changing a tool)', () => {
    expect(read('docs/tools.md')).toBe(toolReference());
    for (const t of ALL_TOOLS) expect(read('docs/tools.md')).toContain(`## \`${t.name}\``);
  });

  it('docs/configuration.md is generated from the settings table (run `npm run docs`)', () => {
    expect(read('docs/configuration.md')).toBe(configReference());
  });

  it('the skill pack references (references/tools.md, configuration.md, phases.md) are generated too (run `npm run docs`)', () => {
    expect(read('references/tools.md')).toBe(toolReference());
    expect(read('references/configuration.md')).toBe(configReference());
    expect(read('references/phases.md')).toBe(phasesReference());
  });

  it('references/phases.md states every tier list and exit criterion of the state machine', () => {
    const page = phasesReference();
    for (const t of TIERS)
      expect(page).toContain(`| ${t} (${TIER_PHASES[t].length}) | ${TIER_PHASES[t].join(' -> ')} |`);
    for (const p of PHASES) {
      const row = page.split('\n').find((l) => l.startsWith(`| ${p} |`));
      expect(row, p).toBeDefined();
      for (const c of EXIT_CRITERIA[p]) expect(row).toContain(`\`${c.id}\`: ${c.description}`);
    }
  });
});

describe('README', () => {
  const readme = read('README.md');
  const firstScreen = readme.split('\n').slice(0, 30).join('\n');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

  it('gives the set-up/run command and the test command on its first screen, and both scripts exist', () => {
    expect(firstScreen).toMatch(/npm ci && npm run demo/);
    expect(firstScreen).toMatch(/npm test/);
    expect(pkg.scripts.demo).toBeTruthy();
    expect(pkg.scripts.test).toBeTruthy();
  });

  it(
    'the README main command, the offline demo, runs every step as shown (against the built dist)',
    { timeout: 120_000 },
    () => {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/demo.mjs')], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...cleanEnv() },
      });
      expect(r.stdout, r.stderr).toMatch(/Demo finished: every step behaved as shown/);
      expect(r.status).toBe(0);
    },
  );

  it('.ci/run installs with npm ci and runs the README test command', () => {
    const ci = read('.ci/run');
    expect(ci).toMatch(/npm ci/);
    expect(ci).toMatch(/npm test/);
  });
});
