import type Database from 'better-sqlite3';
import type { ProxyFileStore, ProxyRequestRecord, ProxyRequestSummary } from './store.js';

interface Row {
  id: string;
  created_at: number;
  created_by: string | null;
  digest: string;
  file_json: string;
  applied_at: number | null;
}
interface SummaryRow {
  id: string;
  created_at: number;
  created_by: string | null;
  machines: number | null;
  applied_at: number | null;
}

/** SQLite engine of ProxyFileStore (installation-ID files collected for isolated networks). */
export class SqliteProxyFiles implements ProxyFileStore {
  readonly #db: Database.Database;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  async addRequest(r: Omit<ProxyRequestRecord, 'appliedAt'>): Promise<void> {
    this.#db
      .prepare(
        'INSERT INTO proxy_requests (id, created_at, created_by, digest, file_json, applied_at) VALUES (?, ?, ?, ?, ?, NULL)',
      )
      .run(r.id, r.createdAt, r.createdBy, r.digest, r.fileJson);
  }

  async getRequest(id: string): Promise<ProxyRequestRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM proxy_requests WHERE id = ?').get(id) as Row | undefined;
    return (
      row && {
        id: row.id,
        createdAt: row.created_at,
        createdBy: row.created_by,
        digest: row.digest,
        fileJson: row.file_json,
        appliedAt: row.applied_at,
      }
    );
  }

  async listRequests(): Promise<ProxyRequestSummary[]> {
    const rows = this.#db
      .prepare(
        `SELECT id, created_at, created_by, applied_at, json_array_length(file_json, '$.entries') AS machines
           FROM proxy_requests ORDER BY created_at DESC, id DESC`,
      )
      .all() as SummaryRow[];
    return rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      createdBy: r.created_by,
      machines: r.machines ?? 0,
      appliedAt: r.applied_at,
    }));
  }

  async markApplied(id: string, at: number): Promise<void> {
    this.#db.prepare('UPDATE proxy_requests SET applied_at = ? WHERE id = ?').run(at, id);
  }
}
