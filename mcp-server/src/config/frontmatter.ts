/**
 * YAML frontmatter (Markdown files that start with a `---` block), read and written with gray-matter over the
 * `yaml` package so there is one YAML dialect. Both are loaded on first use, so start-up does not pay for them
 * (as in domain/yaml.ts). gray-matter's other engines (`---js` evals its block) are replaced by ones that refuse.
 */
import { createRequire } from 'node:module';

declare const require: ((id: string) => unknown) | undefined;

export interface FrontmatterFile {
  data: Record<string, unknown>;
  content: string;
  /** The raw frontmatter text; empty when the file has none. */
  matter: string;
}
interface GrayMatter {
  (input: string, options: object): FrontmatterFile & { language: string };
  stringify(content: string, data: object, options: object): string;
}

let grayMatter: GrayMatter | undefined;
let yamlModule: typeof import('yaml') | undefined;

function load(): { matter: GrayMatter; yaml: typeof import('yaml') } {
  // Literal require calls: the bundler sees them and ships both (gray-matter inside the bundle, evaluated on first
  // use; in the CommonJS bundles yaml is the shared dist/yaml.cjs). A require through a variable was left for Node to resolve at run time
  // from node_modules, which an installed package does not have.
  if (typeof require === 'function') {
    grayMatter ??= require('gray-matter') as GrayMatter;
    yamlModule ??= require('yaml') as typeof import('yaml');
  } else {
    const req = createRequire(import.meta.url);
    grayMatter ??= req('gray-matter') as GrayMatter;
    yamlModule ??= req('yaml') as typeof import('yaml');
  }
  return { matter: grayMatter, yaml: yamlModule };
}

function options() {
  const { yaml } = load();
  const refuse = () => {
    throw new Error('only YAML frontmatter is accepted');
  };
  return {
    language: 'yaml',
    engines: {
      yaml: {
        parse: (s: string) => yaml.parse(s, { schema: 'core', maxAliasCount: 50 }) ?? {},
        stringify: (d: object) => yaml.stringify(d, { schema: 'core', lineWidth: 0 }),
      },
      javascript: { parse: refuse, stringify: refuse },
      js: { parse: refuse, stringify: refuse },
      json: { parse: refuse, stringify: refuse },
      coffee: { parse: refuse, stringify: refuse },
    },
  };
}

/** Split a file into its frontmatter data and body. Throws when the frontmatter does not parse. */
export function parseFrontmatter(text: string): FrontmatterFile {
  const file = load().matter(text, options());
  return { data: { ...file.data }, content: file.content, matter: file.matter };
}

export function stringifyFrontmatter(body: string, data: object): string {
  return load().matter.stringify(body, data, options());
}
