import type { AuditEntry } from './store.js';

/**
 * The audit row a store change writes in its own transaction (key ring, revocations), for
 * either engine: `placeholder` renders SQLite's `?` or PostgreSQL's `$n`.
 */
export const auditInsertSql = (placeholder: (n: number) => string): string =>
  `INSERT INTO audit_log (at, action, result, key_last5, detail, org_id, key_id, actor) VALUES (${[1, 2, 3, 4, 5, 6, 7, 8].map(placeholder).join(', ')})`;
export const auditParams = (a: AuditEntry): unknown[] => [
  a.at,
  a.action,
  a.result,
  a.keyLast5 ?? null,
  a.detail ?? null,
  a.orgId ?? null,
  a.keyId ?? null,
  a.actor ?? null,
];
export const sqlitePlaceholder = (): string => '?';
export const postgresPlaceholder = (n: number): string => `$${n}`;
