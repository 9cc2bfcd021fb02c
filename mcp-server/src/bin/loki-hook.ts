#!/usr/bin/env node
// `loki-hook <event>`: the Claude Code hook entry, built as CommonJS (dist/loki-hook.cjs) because a host starts
// one per tool call and the ES module loader alone costs several milliseconds of each start. PreToolUse and
// PostToolUse run on every tool call, so each has a small bundle of its own (hook-guard.cjs, hook-usage.cjs);
// the other events share hook.cjs (see hook-main.ts).
import { fileURLToPath } from 'node:url';
import { runBundle } from '../launcher.js';

const OWN_BUNDLE: Record<string, string> = { 'pre-tool-use': './hook-guard.cjs', 'post-tool-use': './hook-usage.cjs' };
const bundle = OWN_BUNDLE[process.argv[2] ?? ''] ?? './hook.cjs';
runBundle(fileURLToPath(new URL(bundle, import.meta.url)));
