/**
 * Stand-in for zod 3 and zod-to-json-schema in the bundles. The MCP SDK imports both to accept tool schemas
 * written with zod 3; every schema loki-mode gives it is zod 4, and the tool listing is loki-mode's own
 * (tools/listing.ts), so neither is ever called. Leaving them out takes about 60 KB from the server and CLI
 * bundles, which every start reads. Calling this means that assumption broke.
 */
function unavailable(): never {
  throw new Error('loki-mode: zod 3 is not bundled (every schema given to the MCP SDK is zod 4)');
}

export const object = unavailable;
export const zodToJsonSchema = unavailable;
