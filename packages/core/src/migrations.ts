/** The part of an SQLite handle (better-sqlite3's Database) that schema migrations use. */
export interface MigratableDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(source: string): unknown;
}

/**
 * Applies the migrations the database has not seen, in order, each in its own write
 * transaction; the number applied is kept in SQLite's user_version. A newer database than the
 * code knows is refused rather than used half-understood.
 */
export function applyMigrations(db: MigratableDatabase, migrations: readonly string[], what: string): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > migrations.length) {
    throw new Error(
      `${what} has schema version ${current}, newer than this volact knows (${migrations.length}); upgrade volact`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(migrations[v] as string);
      db.pragma(`user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
}

/**
 * Opens an SQLite store's database the way every volact store does: WAL (readers never wait
 * for the writer), NORMAL sync (durable at each checkpoint, safe against process crashes),
 * foreign keys on, a 5 s wait for another process's write lock, then its migrations.
 */
export function prepareStoreDatabase(db: MigratableDatabase, migrations: readonly string[], what: string): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  applyMigrations(db, migrations, what);
}
