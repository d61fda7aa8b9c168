import type { PgAccess } from '../pg-access.js';
import type { ProxyFileStore, ProxyRequestRecord, ProxyRequestSummary } from './store.js';

interface Row {
  id: string;
  created_at: string;
  created_by: string | null;
  digest: string;
  file_json: string;
  applied_at: string | null;
}
interface SummaryRow {
  id: string;
  created_at: string;
  created_by: string | null;
  machines: number | null;
  applied_at: string | null;
}

const num = (v: string | null): number | null => (v === null ? null : Number(v));

/** PostgreSQL engine of ProxyFileStore (installation-ID files collected for isolated networks). */
export class PostgresProxyFiles implements ProxyFileStore {
  readonly #pg: PgAccess;

  constructor(pg: PgAccess) {
    this.#pg = pg;
  }

  async addRequest(r: Omit<ProxyRequestRecord, 'appliedAt'>): Promise<void> {
    await this.#pg.query(
      'INSERT INTO proxy_requests (id, created_at, created_by, digest, file_json, applied_at) VALUES ($1, $2, $3, $4, $5, NULL)',
      [r.id, r.createdAt, r.createdBy, r.digest, r.fileJson],
    );
  }

  async getRequest(id: string): Promise<ProxyRequestRecord | undefined> {
    const { rows } = await this.#pg.query<Row>('SELECT * FROM proxy_requests WHERE id = $1', [id]);
    const row = rows[0];
    return (
      row && {
        id: row.id,
        createdAt: Number(row.created_at),
        createdBy: row.created_by,
        digest: row.digest,
        fileJson: row.file_json,
        appliedAt: num(row.applied_at),
      }
    );
  }

  async listRequests(): Promise<ProxyRequestSummary[]> {
    const { rows } = await this.#pg.query<SummaryRow>(
      `SELECT id, created_at, created_by, applied_at, json_array_length(file_json::json -> 'entries') AS machines
         FROM proxy_requests ORDER BY created_at DESC, id DESC`,
    );
    return rows.map((r) => ({
      id: r.id,
      createdAt: Number(r.created_at),
      createdBy: r.created_by,
      machines: r.machines ?? 0,
      appliedAt: num(r.applied_at),
    }));
  }

  async markApplied(id: string, at: number): Promise<void> {
    await this.#pg.query('UPDATE proxy_requests SET applied_at = $1 WHERE id = $2', [at, id]);
  }
}
