/**
 * Codex (`codex exec`) with the loki server as `loki install codex` writes it (the project's .codex/config.toml),
 * offline against the fake model API (Responses API): an honest run to VERIFIED.
 */
import { expect, it } from 'vitest';
import { hostSuite } from './suite.js';

hostSuite('codex', 'Codex end to end', { lokiCalls: 22 }, {}, (current) => {
  it('the MCP client is "codex-mcp-client"', () => {
    expect(current().report.clients.map((c) => c.name)).toContain('codex-mcp-client');
  });
});
