/**
 * YAML parsing, loaded on first use: most projects have no config.yaml, and the parser is a noticeable part of
 * start-up (bench/RESULTS.md). In the bundle esbuild turns the require into a lazily evaluated module; from
 * source (tests) createRequire does the same job.
 */
import { createRequire } from 'node:module';

declare const require: ((id: string) => unknown) | undefined;

type YamlModule = typeof import('yaml');
let yaml: YamlModule | undefined;

function load(): YamlModule {
  if (!yaml)
    yaml = (typeof require === 'function' ? require('yaml') : createRequire(import.meta.url)('yaml')) as YamlModule;
  return yaml;
}

export function parseYaml(text: string): unknown {
  return load().parse(text);
}
