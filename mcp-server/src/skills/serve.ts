/**
 * The skill pack over MCP for hosts without a skill mechanism: the loki://skills/{name} resources (the index
 * and every module) and the loki_start prompt, which carries SKILL.md's per-turn protocol.
 */
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { INDEX, listModules, moduleNames, readModule, readProtocol } from './pack.js';

const MIME = 'text/markdown';

export function registerSkillPack(server: McpServer): void {
  server.registerResource(
    'skills',
    new ResourceTemplate('loki://skills/{name}', {
      list: () => ({
        resources: [
          {
            uri: `loki://skills/${INDEX}`,
            name: INDEX,
            title: 'Skill index',
            description: 'Which modules to load for a task (load 1-3)',
            mimeType: MIME,
          },
          ...listModules().map((m) => ({
            uri: `loki://skills/${m.name}`,
            name: m.name,
            description: m.description,
            mimeType: MIME,
          })),
        ],
      }),
      complete: { name: (value) => [INDEX, ...moduleNames()].filter((n) => n.startsWith(value)) },
    }),
    {
      title: 'Loki Mode skill modules',
      description: 'The index and the task modules of the skill pack',
      mimeType: MIME,
    },
    (uri, vars) => {
      const name = Array.isArray(vars.name) ? vars.name.join(',') : String(vars.name);
      return { contents: [{ uri: uri.href, mimeType: MIME, text: readModule(name).body }] };
    },
  );

  server.registerPrompt(
    'loki_start',
    {
      title: 'Start Loki Mode',
      description: 'The Loki Mode per-turn protocol, to begin or resume a run (optionally from a spec)',
      argsSchema: {
        spec: z
          .string()
          .max(1024 * 1024)
          .optional()
          .describe('Spec file path inside the project, or the spec text itself'),
      },
    },
    ({ spec }) => ({
      messages: [{ role: 'user', content: { type: 'text', text: startPrompt(readProtocol(), spec) } }],
    }),
  );
}

/** The prompt text: the protocol, then how to begin with (or without) the given spec. */
export function startPrompt(protocol: string, spec: string | undefined): string {
  const s = spec?.trim();
  const begin = !s
    ? 'Begin now: call loki_start with no arguments to resume the active run (or with `spec` / `specText` to start one), then loki_status.'
    : /^[\w./-]{1,1000}$/.test(s)
      ? `Begin now: call loki_start with spec "${s}" (a path inside the project), then loki_status.`
      : `Begin now: call loki_start with specText set to the spec below, then loki_status.\n\n<spec>\n${s}\n</spec>`;
  return `You are running Loki Mode.\n\n${protocol}\n\n${begin}`;
}
