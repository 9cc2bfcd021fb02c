#!/usr/bin/env node
// `loki`: the command for people (bundle: cli.cjs, see cli-main.ts).
import { fileURLToPath } from 'node:url';
import { runCached } from '../launcher.js';

runCached(fileURLToPath(new URL('./cli.cjs', import.meta.url)));
