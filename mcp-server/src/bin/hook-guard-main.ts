/** `loki-hook pre-tool-use`: the guard alone (bundle: hook-guard.cjs), the hook that runs before every command. */
import { runGuardHook } from '../hooks/guard-hook.js';

runGuardHook();
