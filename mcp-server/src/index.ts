/**
 * Library entry: the server factory plus the storage primitives, for embedding and for the multi-process tests.
 */
export { SafeDir, splitRelativePath, checkId, isWithin, ID_PATTERN } from './store/paths.js';
export * from './errors.js';
export {
  readFileIfExists,
  writeFileAtomic,
  createExclusive,
  removeFile,
  moveFile,
  listNames,
  sweepOrphanTemps,
} from './store/fsx.js';
export { AuditLog } from './audit/log.js';
export { externalAnchorFile } from './audit/anchor.js';
export { Store } from './store/store.js';
export { Db, DB_FILE } from './store/db.js';
export { verifyChainText, canonicalJson, makeEntry, serializeEntry, entryHash, GENESIS } from './audit/chain.js';
export { createServer, SERVER_INSTRUCTIONS, type LokiServer } from './server.js';
export { Project, resolveProjectRoot } from './project.js';
export { ALL_TOOLS } from './tools/index.js';
export { toolReference, configReference, phasesReference } from './docs/reference.js';
export { addTasks, claimTask, completeTask, failTask, updateTask, listTasks } from './queue/operations.js';
export { recordMemory, searchMemory, getMemory, consolidateMemory, listMemory } from './memory/service.js';
export { putItems } from './memory/items.js';
export { writeSolution, readAllSolutions } from './memory/solutions.js';
export { findSecrets, scrubSecrets, scrubText } from './domain/secrets.js';
export { createCheckpoint } from './checkpoints/create.js';
export { rollback } from './checkpoints/rollback.js';
export { readCatalog } from './checkpoints/catalog.js';
