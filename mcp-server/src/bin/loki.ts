#!/usr/bin/env node
// `loki`: the command for people (bundle: cli.cjs, see cli-main.ts).
import { fileURLToPath } from 'node:url';
import { runBundle } from '../launcher.js';

runBundle(fileURLToPath(new URL('./cli.cjs', import.meta.url)));
