/** `loki-hook pre-tool-use`: the guard alone (bundle: hook-guard.cjs), the hook that runs before every command. */
import { guardHook } from '../hooks/guard-hook.js';
import { runHook } from '../hooks/io.js';

runHook(guardHook);
