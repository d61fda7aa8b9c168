export { ConsoleError, consoleErrors } from './errors.js';
export type { ConsoleErrorCode } from './errors.js';
export { VolumeConsole, DB_FILE, MIN_AGENT_TOKEN_LENGTH } from './console.js';
export type {
  ConsoleOptions,
  DiscoveryResult,
  KeySummary,
  MachineResult,
  MachineSummary,
  Progress,
} from './console.js';
export { MAX_DISCOVERY_PROBES, expandRange, parseAddressList, parseMachineAddress } from './addresses.js';
export { AgentClient } from './agent-client.js';
export { AGENT_API_VERSION, agentStatusSchema } from './agent-status.js';
export type { AgentStatus } from './agent-status.js';
export { MAX_BULK_CONFIRMATIONS, authorityOrigin } from './authority-client.js';
export type { AuthorityConnection } from './authority-client.js';
export { parseProxyUrl } from './http.js';
export type { ProxySettings } from './http.js';
export { REPORT_NAMES } from './reports.js';
export type { Report, ReportName, ReportRow } from './reports.js';
export { toCsv, csvField } from './csv.js';
export { KEY_FILE, SecretBox } from './secrets.js';
export { EXPORT_FORMAT, MAX_EXPORT_BYTES, MIN_PASSPHRASE_LENGTH, parseExport } from './export.js';
export type { ConsoleExport, ExportSummary, ImportSummary } from './export.js';
export { SqliteConsoleStore } from './sqlite-store.js';
export type {
  ConfirmationRecord,
  ConsoleDump,
  ConsoleStore,
  ImportCount,
  ImportCounts,
  MachineRecord,
  OperationRecord,
  SnapshotRecord,
  StoredKeyRecord,
  TokenRecord,
} from './store.js';
export { addressesFromDirectory } from './ldap-discovery.js';
