/**
 * Claude Code 2.1.332 with the plugin (--plugin-dir this checkout), offline against the fake model API: an honest
 * run to VERIFIED, the Stop hook blocking a premature stop, the guard refusing writes under .loki/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { PREMATURE_STOP_TEXT, summary } from './hosts.mjs';
import { hostSuite } from './suite.js';

hostSuite(
  'claude',
  'Claude Code (plugin) end to end',
  { lokiCalls: 20, lokiResultChars: 15_000 },
  { prematureStop: true, probeGuard: true },
  (current) => {
    it('a premature stop is blocked by the Stop hook, and the run goes on', () => {
      const r = current().report;
      const items = r.conv.items;
      const stop = items.findIndex((i) => i.kind === 'assistant' && i.text?.includes(PREMATURE_STOP_TEXT));
      expect(stop, summary(r)).toBeGreaterThanOrEqual(0);
      const after = items.slice(stop + 1);
      // The hook's block reaches the model as the next user turn, and the model works on.
      expect(after.some((i) => i.kind === 'user' && /Stop hook/.test(i.text ?? ''))).toBe(true);
      expect(after.some((i) => i.kind === 'call')).toBe(true);
    });

    it('the guard refuses a write under .loki/ by the Write tool and by Bash', () => {
      const { report: r, project } = current();
      const items = r.conv.items;
      for (const tool of ['Write', 'Bash']) {
        const call = items.find(
          (i) => i.kind === 'call' && i.name === tool && JSON.stringify(i.args).includes('.loki/probe-'),
        );
        expect(call, `${tool} probe\n${summary(r)}`).toBeDefined();
        const result = items.find((i) => i.kind === 'result' && i.id === call?.id);
        expect(result?.isError, `${tool}: ${result?.text}`).toBe(true);
      }
      expect(fs.existsSync(path.join(project.root, '.loki', 'probe-write.txt'))).toBe(false);
      expect(fs.existsSync(path.join(project.root, '.loki', 'probe-shell.txt'))).toBe(false);
    });

    it('the MCP client is "claude-code"', () => {
      expect(current().report.clients.map((c) => c.name)).toContain('claude-code');
    });
  },
);
