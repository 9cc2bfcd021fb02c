/**
 * The repository's own ESLint rule (scripts/eslint-import-cycles.mjs), run through ESLint itself on small trees:
 * an import cycle is reported with its path, an import that is erased at build (type-only) is not. `npm run lint`
 * runs the same rule over mcp-server/src.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: an ES module of scripts/, without types
import importCycles from '../scripts/eslint-import-cycles.mjs';

const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** Lint `src/a.ts` of a fresh tree holding `files`; the messages of the cycle rule. */
async function lintTree(files: Record<string, string>): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loki-lint-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, 'src', name)), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', name), text);
  }
  const eslint = new ESLint({
    cwd: dir,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        plugins: { loki: importCycles },
        rules: { 'loki/no-import-cycle': ['error', { root: 'src' }] },
      },
    ],
  });
  const [result] = await eslint.lintFiles(['src/a.ts']);
  return result!.messages.map((m) => `${m.line}: ${m.message}`);
}

describe('loki/no-import-cycle', () => {
  it('reports an import that closes a cycle, with the whole path', async () => {
    const messages = await lintTree({
      'a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'b.ts': "import { c } from './deeper/c.js';\nexport const b = c;\n",
      'deeper/c.ts': "import { a } from '../a.js';\nexport const c = a;\n",
    });
    expect(messages).toEqual([
      expect.stringMatching(/^1: import cycle: a\.ts -> b\.ts -> deeper\/c\.ts -> a\.ts\. Move what both sides need/),
    ]);
  });

  it('counts re-exports and side-effect imports', async () => {
    expect(
      await lintTree({ 'a.ts': "export { b } from './b.js';\n", 'b.ts': "import './a.js';\nexport const b = 1;\n" }),
    ).toHaveLength(1);
    expect(
      await lintTree({ 'a.ts': "import './b.js';\nexport const a = 1;\n", 'b.ts': "export * from './a.js';\n" }),
    ).toHaveLength(1);
  });

  it('leaves out imports the compiler erases: import type, and names that are all types', async () => {
    for (const back of ["import type { A } from './a.js';", "import { type A } from './a.js';"]) {
      const messages = await lintTree({
        'a.ts': "import { b } from './b.js';\nexport type A = number;\nexport const a = b;\n",
        'b.ts': `${back}\nexport const b: A = 1;\n`,
      });
      expect(messages, back).toEqual([]);
    }
  });

  it('reports nothing in a tree without cycles, and nothing for packages or built-ins', async () => {
    expect(
      await lintTree({
        'a.ts': "import fs from 'node:fs';\nimport { b } from './b.js';\nexport const a = [fs, b];\n",
        'b.ts': "import { z } from 'zod';\nexport const b = z;\n",
      }),
    ).toEqual([]);
  });
});
