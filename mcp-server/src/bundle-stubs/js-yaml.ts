/**
 * Stand-in for js-yaml in the bundles. gray-matter loads it for its default YAML engine, which loki-mode always
 * replaces with the `yaml` package (config/frontmatter.ts: one YAML dialect everywhere), so it is never called.
 * Calling this means that assumption broke.
 */
function unavailable(): never {
  throw new Error('loki-mode: js-yaml is not bundled (frontmatter is read with the yaml package)');
}

export const safeLoad = unavailable;
export const safeDump = unavailable;
