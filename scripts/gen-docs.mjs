#!/usr/bin/env node
// Write the generated reference pages from the built library: docs/tools.md and docs/configuration.md, and the
// skill pack's copies in references/ (tools.md, configuration.md, phases.md). tests/docs.test.ts checks they are current.
import fs from 'node:fs';

const lib = await import('../mcp-server/dist/index.js');
const pages = {
  'docs/tools.md': lib.toolReference(),
  'docs/configuration.md': lib.configReference(),
  'references/tools.md': lib.toolReference(),
  'references/configuration.md': lib.configReference(),
  'references/phases.md': lib.phasesReference(),
};
fs.mkdirSync('references', { recursive: true });
for (const [file, text] of Object.entries(pages)) fs.writeFileSync(file, text);
process.stderr.write(`wrote ${Object.keys(pages).join(', ')}\n`);
