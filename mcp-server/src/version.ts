import fs from 'node:fs';

declare const __LOKI_VERSION__: string | undefined;

/** The package version: inlined by the build; read from package.json when running from source (tests). */
export const VERSION: string =
  typeof __LOKI_VERSION__ === 'string'
    ? __LOKI_VERSION__
    : (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
