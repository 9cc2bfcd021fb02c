import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importCycles from './scripts/eslint-import-cycles.mjs';

/**
 * The layers of mcp-server/src, lowest first. A module imports only from its own layer or lower ones; domain is
 * pure (no I/O), so it does not import the store either. Among the surfaces, tools, cli, hooks and dashboard do not import one
 * another; bin/, server.ts, index.ts and docs/ compose them. docs/architecture.md describes the same picture.
 */
const SRC = 'mcp-server/src';
const LAYERS = [
  { name: 'base', dirs: [], files: ['errors.ts', 'log.ts', 'home.ts', 'version.ts'] },
  { name: 'store', dirs: ['store', 'audit'], files: [] },
  { name: 'domain', dirs: ['domain'], files: [] },
  {
    name: 'services',
    dirs: ['config', 'run', 'queue', 'memory', 'trust', 'verify', 'checkpoints', 'skills', 'install'],
    files: ['project.ts', 'root.ts'],
  },
  { name: 'surfaces', dirs: ['tools', 'cli', 'hooks', 'dashboard'], files: [] },
  {
    name: 'composition',
    dirs: ['bin', 'docs', 'bundle-stubs'],
    files: ['server.ts', 'stdio.ts', 'index.ts', 'launcher.ts'],
  },
];

/** A regex matching a relative import of `target` (a folder or a .ts module of src/) from a file in `fromDir`. */
function importOf(target, fromDir) {
  const up = fromDir ? '\\.\\./' : '\\./';
  const name = target.replace(/\.ts$/, '').replace(/[.]/g, '\\.');
  return `^${up}${name}(/|\\.js$)`;
}

function zone(layer, index) {
  const above = LAYERS.slice(index + 1);
  const forbidden = above.flatMap((l) => [...l.dirs, ...l.files]);
  if (layer.name === 'domain') forbidden.push('store', 'audit');
  if (layer.name === 'surfaces') forbidden.push(...layer.dirs);
  const configs = [];
  for (const dir of layer.dirs) {
    const own = forbidden.filter((t) => t !== dir);
    configs.push({
      files: [`${SRC}/${dir}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: own.map((t) => ({
              regex: importOf(t, true),
              message: `${layer.name} (${dir}/) must not import ${t}: see the layers in eslint.config.mjs`,
            })),
          },
        ],
      },
    });
  }
  if (layer.files.length > 0) {
    configs.push({
      files: layer.files.map((f) => `${SRC}/${f}`),
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: forbidden.map((t) => ({
              regex: importOf(t, false),
              message: `${layer.name} must not import ${t}: see the layers in eslint.config.mjs`,
            })),
          },
        ],
      },
    });
  }
  return configs;
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'mcp-server/dist/**', 'bench/.tmp/**', 'coverage/**', '.node/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        performance: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...LAYERS.flatMap(zone),
  {
    // No import cycles inside a layer either (scripts/eslint-import-cycles.mjs; type-only imports excepted).
    files: [`${SRC}/**/*.ts`],
    plugins: { loki: importCycles },
    rules: { 'loki/no-import-cycle': ['error', { root: SRC }] },
  },
  {
    // stdout is the MCP protocol: server code logs through log.ts (stderr) only. The human CLI owns its stdout,
    // and the hook entry prints the host's decision there (and nothing else).
    files: ['mcp-server/src/**/*.ts'],
    ignores: ['mcp-server/src/cli/**', 'mcp-server/src/bin/loki.ts', 'mcp-server/src/hooks/io.ts'],
    rules: {
      'no-console': 'error',
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'stdout',
          message: 'stdout carries the MCP protocol; log to stderr through log.ts',
        },
      ],
    },
  },
);
