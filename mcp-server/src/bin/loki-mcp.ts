#!/usr/bin/env node
// `loki-mcp`: the stdio MCP server (bundle: server.cjs, see server-main.ts).
import { fileURLToPath } from 'node:url';
import { runBundle } from '../launcher.js';

runBundle(fileURLToPath(new URL('./server.cjs', import.meta.url)));
