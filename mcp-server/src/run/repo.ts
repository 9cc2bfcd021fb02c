/** Repository signals for complexity-tier detection, gathered without following links or scanning everything. */
import fs from 'node:fs';
import path from 'node:path';
import type { RepoSignals } from '../domain/complexity.js';

const SOURCE_EXTENSIONS = new Set(
  'ts tsx js jsx mjs cjs py rb go rs java kt swift c h cc cpp hpp cs php scala ex exs vue svelte sql sh'
    .split(' ')
    .map((e) => `.${e}`),
);
const SKIPPED_DIRS = new Set([
  'node_modules',
  '.git',
  '.loki',
  'dist',
  'build',
  'vendor',
  'target',
  '.venv',
  'venv',
  'coverage',
  '.next',
  '__pycache__',
]);
const INFRA_FILES = [
  'docker-compose.yml',
  'docker-compose.yaml',
  'compose.yml',
  'compose.yaml',
  'k8s',
  'kubernetes',
  'helm',
  'Chart.yaml',
  'terraform',
  'main.tf',
];

/**
 * Repository signals for tier detection: a breadth-first count of source files that stops at `cap` (the tier
 * only needs to know "more than 50"), without following links, plus well-known infrastructure files at the root.
 */
export function repoSignals(root: string, cap = 200): RepoSignals {
  let sourceFiles = 0;
  const queue = [root];
  let visitedDirs = 0;
  while (queue.length > 0 && sourceFiles < cap && visitedDirs < 5_000) {
    const dir = queue.shift()!;
    visitedDirs++;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(e.name) && !e.name.startsWith('.')) queue.push(path.join(dir, e.name));
      } else if (e.isFile() && SOURCE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) {
        if (++sourceFiles >= cap) break;
      }
    }
  }
  const containerOrInfra = INFRA_FILES.filter((name) => fs.existsSync(path.join(root, name)));
  return { sourceFiles, containerOrInfra };
}
