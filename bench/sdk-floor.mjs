// The floor of a cold start: an MCP server with nothing of loki-mode in it, only the SDK's McpServer over stdio,
// bundled and started the way loki-mcp is (one CommonJS bundle with the same stubs, through Node's compile cache:
// bench/run.mjs builds it). Whatever a server built on the SDK does, it pays at least this before `initialize`.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

// As loki's createServer: no Ajv (the server never elicits).
const noValidator = { getValidator: () => () => ({ valid: false, data: undefined, errorMessage: 'not bundled' }) };
const server = new McpServer({ name: 'sdk-floor', version: '1.0.0' }, { jsonSchemaValidator: noValidator });
server.connect(new StdioServerTransport());
