/**
 * zod's `locales` namespace, reduced to English for the bundles. zod exports every language's error messages
 * (a third of the server bundle); nothing here switches language, and zod configures English itself.
 */
export { default as en } from 'zod/v4/locales/en.js';
