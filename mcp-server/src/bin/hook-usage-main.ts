/** `loki-hook post-tool-use`: usage and budget only (bundle: hook-usage.cjs), the hook that runs after every tool call. */
import { runHook } from '../hooks/io.js';
import { usageHook } from '../hooks/usage-hook.js';

runHook(usageHook);
