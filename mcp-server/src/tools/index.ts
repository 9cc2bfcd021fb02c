/** The registry: every tool of the server, in the order they are listed. */
import { checkpointTools } from './checkpoints.js';
import type { AnyToolSpec } from './define.js';
import { memoryTools } from './memory.js';
import { runTools } from './run.js';
import { skillTools } from './skills.js';
import { taskTools } from './tasks.js';
import { trustTools } from './trust.js';
import { verifyTools } from './verify.js';

export const ALL_TOOLS: readonly AnyToolSpec[] = [
  ...runTools,
  ...taskTools,
  ...verifyTools,
  ...trustTools,
  ...checkpointTools,
  ...memoryTools,
  ...skillTools,
];
