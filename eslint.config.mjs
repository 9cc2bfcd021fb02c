import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'mcp-server/dist/**', 'bench/.tmp/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
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
        { object: 'process', property: 'stdout', message: 'stdout carries the MCP protocol; log to stderr through log.ts' },
      ],
    },
  },
);
