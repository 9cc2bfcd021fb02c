#!/usr/bin/env node
// Write the generated reference pages (docs/tools.md, docs/configuration.md) from the built library.
import fs from 'node:fs';

const lib = await import('../mcp-server/dist/index.js');
fs.writeFileSync('docs/tools.md', lib.toolReference());
fs.writeFileSync('docs/configuration.md', lib.configReference());
process.stderr.write('wrote docs/tools.md and docs/configuration.md\n');
