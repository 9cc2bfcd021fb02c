declare const __LOKI_VERSION__: string;

/** The package version, inlined from package.json by the build (and by vitest.config.ts for tests). */
export const VERSION: string = __LOKI_VERSION__;
