/** Skill tools: loki_skill_load, the skill pack for hosts without a skill mechanism (Codex, Cline). */
import { z } from 'zod';
import { INDEX, listModules, readModule, type ModuleInfo } from '../skills/pack.js';
import { defineTool } from './define.js';

export const skillLoadTool = defineTool({
  name: 'loki_skill_load',
  title: 'Load a skill module',
  description:
    'For hosts without skills: no name returns the index (which modules fit the task); a name returns that module. Load 1-3.',
  kind: 'read',
  idempotent: true,
  input: z
    .object({
      name: z
        .string()
        .min(1)
        .max(200)
        .optional()
        .describe('Module name from the index, e.g. "testing"; omit for the index'),
    })
    .strict(),
  handler: async (
    args,
  ): Promise<{ name: string; description: string; when: string; body: string; modules?: ModuleInfo[] }> => {
    const m = readModule(args.name ?? INDEX);
    return m.name === INDEX ? { ...m, modules: listModules() } : m;
  },
  render: (r) => r.body,
});

export const skillTools = [skillLoadTool];
