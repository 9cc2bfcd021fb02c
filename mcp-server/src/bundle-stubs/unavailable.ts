/**
 * Stand-in for Ajv and ajv-formats in the bundles. The MCP SDK imports them only to validate elicitation
 * answers; createServer() passes its own validator (the server never elicits), so they are never called, and
 * leaving them out saves their evaluation on every start-up. Calling this means that assumption broke.
 */
export default function unavailable(): never {
  throw new Error('loki-mode: Ajv is not bundled (the server does not use elicitation)');
}
