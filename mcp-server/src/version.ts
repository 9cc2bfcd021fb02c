declare const __LOKI_VERSION__: string | undefined;

/** The package version, inlined at build time (read from package.json when running from source). */
export const VERSION: string = typeof __LOKI_VERSION__ === 'string' ? __LOKI_VERSION__ : '0.0.0-dev';
