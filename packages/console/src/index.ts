export { ConsoleError, consoleErrors } from './errors.js';
export type { ConsoleErrorCode } from './errors.js';
export { VolumeConsole, DB_FILE, MIN_AGENT_TOKEN_LENGTH } from './console.js';
export { looksLikeProductKey } from './fleet.js';
export type * from './results.js';
export { MIN_ADMIN_PASSWORD_LENGTH, checkUserRole } from './admins.js';
export { startConsoleServer } from './web/index.js';
export type { ConsoleServer, ConsoleServerOptions } from './web/index.js';
export { webErrors } from './web/index.js';
export { acquireServeLock, SERVE_LOCK_FILE, type ServeLock } from './web/serve-lock.js';
export { MAX_DISCOVERY_PROBES, expandRange, parseAddressList, parseMachineAddress } from './addresses.js';
export { AgentClient } from './agent-client.js';
export type { AgentClientOptions, ProbeResult } from './agent-client.js';
export { AgentConnections, AGENT_CONNECTION_DEFAULTS } from './agent-connections.js';
export type { AgentConnectionOptions } from './agent-connections.js';
/** The agent API is declared in core (both ends read it); re-exported for the console's callers. */
export { AGENT_API_VERSION, agentStatusSchema } from '@volact/core';
export type { AgentStatus } from '@volact/core';
export { MAX_BULK_CONFIRMATIONS, authorityOrigin, bulkConfirm } from './authority-client.js';
export type { AuthorityConnection } from './authority-client.js';
export { parseProxyUrl } from './http.js';
export type { ProxySettings } from './http.js';
export { REPORT_NAMES } from './reports.js';
export type { Report, ReportName, ReportRow } from './reports.js';
export { toCsv, csvField } from './csv.js';
export { printable } from './printable.js';
export { KEY_FILE, SecretBox } from './secrets.js';
export { EXPORT_FORMAT, MAX_EXPORT_BYTES, MIN_PASSPHRASE_LENGTH, parseExport } from './export.js';
export type { ConsoleExport, ExportSummary, ImportSummary } from './export.js';
export { SqliteConsoleStore, databaseError as sqliteDatabaseError } from './sqlite-store.js';
export { PostgresConsoleStore } from './postgres-store.js';
export { openConsoleStore } from './open-store.js';
export { AGENT_TLS_FILES, installAgentTls, loadAgentTls } from './agent-tls.js';
export type { AgentTls, AgentTlsSummary } from './agent-tls.js';
export type {
  ConfirmationRecord,
  ConsoleDump,
  AdminRecord,
  ConsoleStore,
  ImportCount,
  ImportCounts,
  MachineRecord,
  MakCountersRecord,
  OperationRecord,
  SnapshotRecord,
  StoredKeyRecord,
  TokenRecord,
} from './store.js';
export { addressesFromDirectory } from './ldap-discovery.js';
