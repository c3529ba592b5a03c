/** Depot's persistence: interfaces (types.ts) and the embedded SQLite implementation. */
export * from './types.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { SecretKey } from './secret.js';
export { SECRET_KEY_ENV, SECRET_KEY_FILE_NAME, parseSecretKey } from './secret-box.js';
export { MIGRATIONS, type Migration } from './migrations.js';
export {
  DEPOT_APPLICATION_ID,
  SQLITE_FILE_NAME,
  SqliteStore,
  openSqliteStore,
  type AppliedMigration,
  type SqliteStoreOptions,
} from './sqlite.js';
