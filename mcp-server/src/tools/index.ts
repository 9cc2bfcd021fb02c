/** The registry: every tool of the server, in the order they are listed. */
import { checkpointTools } from './checkpoints.js';
import type { AnyToolSpec } from './define.js';
import { memoryTools } from './memory.js';
import { runTools } from './run.js';
import { taskTools } from './tasks.js';

export const ALL_TOOLS: readonly AnyToolSpec[] = [...runTools, ...taskTools, ...memoryTools, ...checkpointTools];
