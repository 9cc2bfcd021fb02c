#!/usr/bin/env node
// `loki-hook <event>`: the Claude Code hook entry. PreToolUse, which runs before every command and write, has
// a bundle of its own with only the guard (hook-guard.cjs); the other events share hook.cjs (see hook-main.ts).
import { fileURLToPath } from 'node:url';
import { runCached } from '../launcher.js';

const bundle = process.argv[2] === 'pre-tool-use' ? './hook-guard.cjs' : './hook.cjs';
runCached(fileURLToPath(new URL(bundle, import.meta.url)));
