#!/usr/bin/env node
// `loki-hook`: the Claude Code hook entry (bundle: hook.cjs, see hook-main.ts).
import { fileURLToPath } from 'node:url';
import { runCached } from '../launcher.js';

runCached(fileURLToPath(new URL('./hook.cjs', import.meta.url)));
