import type { AuditEntry } from './store.js';

/**
 * The audit row a store change writes in its own transaction (key ring, revocations), for
 * either engine: `placeholder` renders SQLite's `?` or PostgreSQL's `$n`.
 */
export const auditInsertSql = (placeholder: (n: number) => string): string =>
  `INSERT INTO audit_log (at, action, result, key_last5, detail) VALUES (${placeholder(1)}, ${placeholder(2)}, ${placeholder(3)}, ${placeholder(4)}, ${placeholder(5)})`;
export const auditParams = (a: AuditEntry): unknown[] => [
  a.at,
  a.action,
  a.result,
  a.keyLast5 ?? null,
  a.detail ?? null,
];
export const sqlitePlaceholder = (): string => '?';
export const postgresPlaceholder = (n: number): string => `$${n}`;
