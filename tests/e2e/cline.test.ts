/**
 * Cline 3.x (`cline --json`) with the loki server as `loki install cline` writes it, offline against the fake
 * model API (Chat Completions): an honest run to VERIFIED.
 */
import { expect, it } from 'vitest';
import { hostSuite } from './suite.js';

hostSuite('cline', 'Cline end to end', { lokiCalls: 22 }, {}, (current) => {
  it('the MCP client is "@cline/core"', () => {
    expect(current().report.clients.map((c) => c.name)).toContain('@cline/core');
  });
});
