import { z } from 'zod';
import type { AgentStatus, KeyType, LicenceMethod, LicenceState } from '@volact/core';

/**
 * The console web API's contract (`volact console serve`, /api/…): what each route takes and
 * answers, declared once. The server validates requests with these schemas and types its
 * answers by them; the React UI (packages/console/web) imports this module for its types and
 * its few lists. So it depends on zod alone: the UI bundles it, and core is node code (only its
 * types are imported, which leave nothing in the bundle). Core's own vocabularies (licence
 * states, methods, key types) are therefore typed here, not listed: the server fills them from
 * core's values, and the UI labels each with a Record over core's type, so a new value is a
 * compile error there, not a value the UI cannot show or filter by.
 */

const ofType = <T>() => z.custom<T>((value) => typeof value === 'string');
const licenceState = ofType<LicenceState>();
const licenceMethod = ofType<LicenceMethod>();
const keyType = ofType<KeyType>();
const installedKeyType = ofType<NonNullable<AgentStatus['installedKeyType']>>();
/** An agent's status as it sent it (parsed by core's agentStatusSchema when it came in). */
const agentStatus = z.custom<AgentStatus>((value) => typeof value === 'object' && value !== null);
const isoTime = z.string();

// ---- requests --------------------------------------------------------------------------

/** The bulk operations the UI can start (POST /api/jobs). */
export const JOB_OPERATIONS = [
  'refresh',
  'install-key',
  'activate',
  'proxy-activate',
  'reactivate',
  'discover',
  'set-kms-host',
  'set-kms-host-caching',
  'rotate-token',
  'enrol',
  'collect-iids',
  'apply-confirmations',
] as const;
export type JobOperation = (typeof JOB_OPERATIONS)[number];

/** The console's reports (GET /api/reports/NAME, and NAME.csv). */
export const REPORT_NAMES = ['at-risk', 'duplicate-cmid', 'mak-usage', 'unlicensed', 'by-authority'] as const;
export type ReportName = (typeof REPORT_NAMES)[number];

/** The most machines one job may name (else `"all"`). */
export const MAX_JOB_MACHINES = 50_000;

/** POST /api/login */
export const loginRequest = z.strictObject({
  user: z.string().min(1).max(128),
  password: z.string().min(1).max(1024),
});

/** POST /api/keys */
export const keyRequest = z.strictObject({
  key: z.string().trim().min(1).max(64),
  name: z.string().trim().min(1).max(64).optional(),
});

/** Console user roles: an admin does everything, a viewer reads (every POST but login/logout is ROLE_FORBIDDEN). */
export const USER_ROLES = ['admin', 'viewer'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** What the machines table sorts by (GET /api/machines?sort=). */
export const MACHINE_SORTS = [
  'name',
  'address',
  'hostName',
  'os',
  'productVersion',
  'state',
  'method',
  'group',
  'installedKey',
  'kmsHost',
  'expiresAt',
  'lastSeenAt',
  'lastBootAt',
] as const;
export type MachineSort = (typeof MACHINE_SORTS)[number];

/** The most rows one page of any table answers. */
export const MAX_PAGE_SIZE = 500;
/** Uploads (an export to import, an installation-ID or confirmation file) may be this large. */
export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

/**
 * Which machines the machines table shows (GET /api/machines query string), and which a job
 * started from "every machine matching" works on. `q` matches (case-insensitively, as a
 * substring) the name, address, host name, OS and its version, product version, client machine
 * ID and installed key's last five; `state` may be `unknown` (never read), `method` `none`.
 */
export const machineFilter = z.strictObject({
  q: z.string().trim().max(200).optional(),
  state: z.string().max(40).optional(),
  method: z.string().max(20).optional(),
});
export type MachineFilter = z.infer<typeof machineFilter>;

/** GET /api/machines?offset=&limit=&sort=&dir=&q=&state=&method= (numbers as query text). */
export const machinesQuery = machineFilter.extend({
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(50),
  sort: z.enum(MACHINE_SORTS).default('name'),
  dir: z.enum(['asc', 'desc']).default('asc'),
});
export type MachinesQuery = z.infer<typeof machinesQuery>;

/** GET /api/operations?offset=&limit=&q=&operation=&outcome= */
export const operationsQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(100),
  /** Substring of the machine, operation, code or detail. */
  q: z.string().trim().max(200).optional(),
  operation: z.string().max(40).optional(),
  outcome: z.enum(['ok', 'failed']).optional(),
});
export type OperationsQuery = z.infer<typeof operationsQuery>;

/** GET /api/reports/:name?days=&offset=&limit= (the .csv has every row). */
export const reportQuery = z.strictObject({
  days: z.coerce.number().int().min(0).max(3650).default(30),
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(100),
});

/** GET /api/jobs/:id?offset=&limit= (a job's results, in the order they came). */
export const jobQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).max(10_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(100),
});

const machineRef = z.union([z.string().min(1).max(300), z.number().int().nonnegative()]);
/** Machines a job works on: by id, name or address, every machine, or every machine matching a filter. */
const jobMachines = z.union([
  z.literal('all'),
  z.array(machineRef).min(1).max(MAX_JOB_MACHINES),
  z.strictObject({ filter: machineFilter }),
]);
export type JobMachines = z.infer<typeof jobMachines>;

/** Where `discover` looks (exactly one of range, addresses, ldap), with the enrolment token. */
export const discoverRequest = z.strictObject({
  /** `HOST:P1-P2` or `A.B.C.D-A.B.C.E:PORT` (as `console discover --range`). */
  range: z.string().trim().min(1).max(300).optional(),
  /** HOST:PORT or https://HOST:PORT, at most 1 024. */
  addresses: z.array(z.string().trim().min(1).max(300)).min(1).max(1024).optional(),
  ldap: z
    .strictObject({
      url: z.string().trim().min(1).max(2000),
      base: z.string().trim().min(1).max(1000),
      filter: z.string().trim().min(1).max(1000).optional(),
      bindDn: z.string().trim().min(1).max(1000).optional(),
      password: z.string().min(1).max(1024).optional(),
      agentPort: z.number().int().min(1).max(65535).optional(),
    })
    .optional(),
  /** The agents' enrolment token (their --admin-token-file). */
  token: z.string().min(16).max(1024),
  /** Call the addresses found as https:// (agents with TLS). */
  https: z.boolean().optional(),
});

/** POST /api/jobs: one of the bulk operations, by `operation`. */
export const jobRequest = z.discriminatedUnion('operation', [
  z.strictObject({ operation: z.literal('refresh'), machines: jobMachines }),
  /** A stored key's name. */
  z.strictObject({ operation: z.literal('install-key'), machines: jobMachines, key: z.string().min(1).max(64) }),
  /** The authority's URL (else the machines' product config's). */
  z.strictObject({
    operation: z.literal('activate'),
    machines: jobMachines,
    authority: z.string().min(1).max(2000).optional(),
  }),
  /** The authority's URL (else the server's --authority). */
  z.strictObject({
    operation: z.literal('proxy-activate'),
    machines: jobMachines,
    authority: z.string().min(1).max(2000).optional(),
  }),
  z.strictObject({ operation: z.literal('reactivate'), machines: jobMachines }),
  z.strictObject({ operation: z.literal('discover'), discover: discoverRequest }),
  /** HOST[:PORT] of the KMS host, or null to clear it (DNS discovery again). */
  z.strictObject({
    operation: z.literal('set-kms-host'),
    machines: jobMachines,
    kmsHost: z.string().trim().min(1).max(300).nullable(),
  }),
  /** KMS host caching on (a host found through DNS is kept for renewals) or off (DNS every time). */
  z.strictObject({ operation: z.literal('set-kms-host-caching'), machines: jobMachines, enabled: z.boolean() }),
  z.strictObject({ operation: z.literal('rotate-token'), machines: jobMachines }),
  /** Re-enrol (clears the untrusted mark); `token`: the agents' new enrolment token, when they were reset. */
  z.strictObject({
    operation: z.literal('enrol'),
    machines: jobMachines,
    token: z.string().min(16).max(1024).optional(),
  }),
  /** Isolated networks, step 1: the job writes the installation-ID file (job.proxyFileId). */
  z.strictObject({ operation: z.literal('collect-iids'), machines: jobMachines }),
  /** Isolated networks, step 3: the confirmation file's text. */
  z.strictObject({ operation: z.literal('apply-confirmations'), file: z.string().min(2).max(MAX_UPLOAD_BYTES) }),
]);

/** POST /api/machines: add machines by agent address, with the agents' enrolment token. */
export const addMachinesRequest = z.strictObject({
  addresses: z.array(z.string().trim().min(1).max(300)).min(1).max(1024),
  token: z.string().min(16).max(1024),
  /** Only with one address (default: the agent's host name once read, shown until then as the address). */
  name: z.string().trim().min(1).max(64).optional(),
});

/** POST /api/machines/remove */
export const removeMachinesRequest = z.strictObject({ machines: z.array(machineRef).min(1).max(MAX_JOB_MACHINES) });

/** POST /api/machines/:ref/confirmation: a confirmation ID read out over the phone (digit groups, any separators). */
export const confirmationRequest = z.strictObject({ confirmationId: z.string().trim().min(1).max(400) });

/** POST /api/users */
export const addUserRequest = z.strictObject({
  user: z.string().trim().min(1).max(64),
  password: z.string().min(1).max(1024),
  role: z.enum(USER_ROLES),
});
/** POST /api/users/:name/password */
export const userPasswordRequest = z.strictObject({ password: z.string().min(1).max(1024) });
/** POST /api/users/:name/role */
export const userRoleRequest = z.strictObject({ role: z.enum(USER_ROLES) });

/** The fewest characters of an export's passphrase (export.ts MIN_PASSPHRASE_LENGTH; the UI checks it before sending). */
export const MIN_PASSPHRASE_LENGTH = 12;
/** POST /api/export: the whole data set as a download; secrets only with a passphrase (12+). */
export const exportRequest = z.strictObject({ passphrase: z.string().min(1).max(1024).optional() });
/** POST /api/import: an export file's text, and its passphrase when it holds secrets. */
export const importRequest = z.strictObject({
  file: z.string().min(2).max(MAX_UPLOAD_BYTES),
  passphrase: z.string().min(1).max(1024).optional(),
});

/** POST /api/proxy-files/confirm (a console that reaches the authority): the installation-ID file's text. */
export const confirmFileRequest = z.strictObject({
  file: z.string().min(2).max(MAX_UPLOAD_BYTES),
  authority: z.string().min(1).max(2000).optional(),
  /** The collecting console's key ID: a file signed by any other key is PROXY_FILE_FOREIGN. */
  consoleKeyId: z
    .string()
    .regex(/^[0-9a-f]{16}$/i)
    .optional(),
});
export type LoginRequest = z.infer<typeof loginRequest>;
export type KeyRequest = z.infer<typeof keyRequest>;
export type JobRequest = z.infer<typeof jobRequest>;
export type DiscoverRequest = z.infer<typeof discoverRequest>;
export type AddMachinesRequest = z.infer<typeof addMachinesRequest>;
export type AddUserRequest = z.infer<typeof addUserRequest>;
export type ImportRequest = z.infer<typeof importRequest>;

// ---- answers ---------------------------------------------------------------------------

/** Every error: `{"error":{"code","message"}}` with the code's HTTP status (see errors.ts). */
export const errorAnswer = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** POST /api/login and GET /api/session. */
export const sessionInfo = z
  .object({
    user: z.string(),
    /** The server's default authority (origin only), for proxy activation. */
    authority: z.string().nullable(),
    /** Whether the server can read the MAK counters from that authority (it has its admin token). */
    makCounters: z.boolean(),
    /**
     * The key ID this console signs its installation-ID files with: what the confirming side
     * pins (`--console-key-id`) to take only this console's files.
     */
    consoleKeyId: z.string(),
    /** admin: everything; viewer: reads only (the UI disables what it may not do, saying why). */
    role: z.enum(USER_ROLES),
  })
  .readonly();
export type SessionInfo = z.infer<typeof sessionInfo>;

/** A machine as listed: its record and its latest status. */
export const machineSummary = z
  .object({
    /** Stable numeric id: what `--machine ID` takes (names and addresses work too). */
    id: z.number(),
    name: z.string(),
    address: z.string(),
    addedAt: isoTime,
    lastSeenAt: isoTime.nullable(),
    lastError: z.object({ code: z.string(), message: z.string(), at: isoTime }).nullable(),
    /** Set when the machine failed its proof: no call goes to it until `machine enrol`. */
    untrusted: z.object({ at: isoTime, reason: z.string() }).nullable(),
    state: licenceState.nullable(),
    method: licenceMethod.nullable(),
    group: z.string().nullable(),
    clientMachineId: z.string().nullable(),
    installedKey: z.string().nullable(),
    installedKeyType: installedKeyType.nullable(),
    kmsHost: z.string().nullable(),
    expiresAt: isoTime.nullable(),
    /** What the UI shows: the name given, else the agent's host name, else the address. */
    displayName: z.string(),
    /** The agent's facts (GET /v1/status `machine`), as last read; null before, or from an older agent. */
    hostName: z.string().nullable(),
    os: z.string().nullable(),
    osVersion: z.string().nullable(),
    productVersion: z.string().nullable(),
    lastBootAt: isoTime.nullable(),
  })
  .readonly();
export type MachineSummary = z.infer<typeof machineSummary>;

/** One entry of a machine's status history (one per change). */
export const historyEntry = z.object({ takenAt: isoTime, status: agentStatus }).readonly();
export type HistoryEntry = z.infer<typeof historyEntry>;

/** A stored key: never more of it than its last five characters. */
export const keySummary = z
  .object({
    name: z.string(),
    type: keyType,
    /** …ABCDE */
    key: z.string(),
    addedAt: isoTime,
  })
  .readonly();
export type KeySummary = z.infer<typeof keySummary>;

/** One machine's outcome of an operation. */
export const machineResult = z
  .object({
    machine: z.string(),
    address: z.string(),
    ok: z.boolean(),
    /** null on success; else the console's code, or the agent's or authority's own code. */
    code: z.string().nullable(),
    message: z.string(),
    /** The machine's licence state after the operation, when its agent answered. */
    state: licenceState.nullable(),
    method: licenceMethod.nullable(),
    /** refresh: whether the status changed (a history row was written). */
    changed: z.boolean().optional(),
    installationId: z.string().optional(),
    confirmationId: z.string().optional(),
    /** The machine's display name and last contact as of this result (job rows show the state then, not now). */
    displayName: z.string().optional(),
    lastSeenAt: isoTime.nullable().optional(),
  })
  .readonly();
export type MachineResult = z.infer<typeof machineResult>;

/** One stored MAK's counters refreshed from the authority, or why not. */
export const makCountResult = z
  .object({
    name: z.string(),
    key: z.string(),
    ok: z.boolean(),
    code: z.string().nullable(),
    message: z.string(),
    limit: z.number().nullable(),
    used: z.number().nullable(),
    remaining: z.number().nullable(),
  })
  .readonly();
export type MakCountResult = z.infer<typeof makCountResult>;

/** An entry of the console's operations log. */
export const operationEntry = z
  .object({
    id: z.number(),
    at: isoTime,
    operation: z.string(),
    machine: z.string().nullable(),
    ok: z.boolean(),
    code: z.string().nullable(),
    detail: z.string().nullable(),
  })
  .readonly();
export type OperationEntry = z.infer<typeof operationEntry>;

const jobFields = {
  id: z.string(),
  operation: z.enum(JOB_OPERATIONS),
  /** Who started it (the session's user). */
  user: z.string(),
  /** What it does beyond the operation's name: the key's name and last five, the authority's origin. */
  detail: z.string().nullable(),
  startedAt: isoTime,
  finishedAt: isoTime.nullable(),
  total: z.number(),
  done: z.number(),
  finished: z.boolean(),
  /** running; finished; failed (the operation as a whole: `error`); interrupted (the server stopped mid-job). */
  state: z.enum(['running', 'finished', 'failed', 'interrupted']),
  /** One line on the outcome: discover's counts, what an interrupted job had done. */
  outcome: z.string().nullable(),
  /** collect-iids: the installation-ID file it wrote (GET /api/proxy-files/:id). */
  proxyFileId: z.string().nullable(),
  /** When the operation as a whole failed (no machine was called, or it stopped). */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
};
/** A bulk operation run by the server, with a page of its results (in the order they came). */
export const job = z.object({
  ...jobFields,
  results: z.array(machineResult),
  /** How many results the job has in all (the page is `results`, from `offset`). */
  resultsTotal: z.number(),
  offset: z.number(),
});
export type Job = z.infer<typeof job>;
/** A job in the list: its counts instead of its results. */
export const jobSummary = z.object({ ...jobFields, ok: z.number(), failed: z.number() }).readonly();
export type JobSummary = z.infer<typeof jobSummary>;

const csvValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string()).readonly()]);
/** A report: its rows, each with the `columns` as keys (the CSV's columns, in order). */
export const report = z
  .object({
    report: z.enum(REPORT_NAMES),
    generatedAt: isoTime,
    columns: z.array(z.string()).readonly(),
    rows: z.array(z.record(z.string(), csvValue).readonly()).readonly(),
  })
  .readonly();
export type Report = z.infer<typeof report>;
/** A page of a report (GET /api/reports/:name): `total` rows in all, `labels` the columns' human names. */
export const reportPage = z
  .object({
    report: z.enum(REPORT_NAMES),
    generatedAt: isoTime,
    columns: z.array(z.string()).readonly(),
    labels: z.record(z.string(), z.string()),
    rows: z.array(z.record(z.string(), csvValue).readonly()).readonly(),
    total: z.number(),
    offset: z.number(),
  })
  .readonly();
export type ReportPage = z.infer<typeof reportPage>;

/**
 * Each report column's human name (the UI's table headers); the CSV keeps the stable machine
 * names of `columns`. Exhaustive: a column without a label here fails reports.test.ts.
 */
export const REPORT_COLUMN_LABELS: Readonly<Record<string, string>> = {
  machine: 'Machine',
  address: 'Agent address',
  group: 'Product group',
  state: 'State',
  expiresAt: 'Licence ends',
  daysLeft: 'Days left',
  reason: 'Why',
  lastSeenAt: 'Last contact',
  clientMachineId: 'Client machine ID',
  machines: 'Machines',
  name: 'Key name',
  key: 'Key (last five)',
  limit: 'Activation limit',
  used: 'Used',
  remaining: 'Remaining',
  countedAt: 'Counted at',
  installedOn: 'Installed on',
  activatedOn: 'Activated on',
  authorityError: 'Authority error',
  installedKey: 'Installed key',
  installedKeyType: 'Key type',
  lastAttemptCode: 'Last attempt',
  activatedBy: 'Activated by',
  authority: 'Authority / host',
  keyName: 'Stored key',
};

/** A console user (never the password hash). */
export const userSummary = z.object({ name: z.string(), role: z.enum(USER_ROLES), createdAt: isoTime }).readonly();
export type UserSummary = z.infer<typeof userSummary>;

/** An installation-ID file collected here (isolated networks, step 1). */
export const proxyFileSummary = z
  .object({
    id: z.string(),
    createdAt: isoTime,
    createdBy: z.string().nullable(),
    machines: z.number(),
    appliedAt: isoTime.nullable(),
  })
  .readonly();
export type ProxyFileSummary = z.infer<typeof proxyFileSummary>;

/** What an import did, per kind (as `console import --json`). */
const importCount = z.object({ added: z.number(), updated: z.number(), unchanged: z.number() });
export const importSummary = z
  .object({
    secrets: z.boolean(),
    exportedAt: isoTime,
    machines: importCount,
    statusHistory: importCount,
    keys: importCount,
    confirmationIds: importCount,
    operations: importCount,
    secretsMissing: z.object({ keys: z.number(), machines: z.number() }),
  })
  .readonly();
export type ImportSummary = z.infer<typeof importSummary>;

/**
 * One day of the timeline: `{day, STATE: count…}`. zod has no object of one named field plus
 * keys of a type, so the counts are checked as numbers and typed by core's states.
 */
const timelineDay = z.object({ day: z.string() }).catchall(z.number()) as unknown as z.ZodType<
  { readonly day: string } & Readonly<Record<LicenceState, number>>
>;

/** GET /api/charts: machines per state now, and per state at the end of each day. */
export const charts = z
  .object({
    states: z.record(z.union([licenceState, z.literal('unknown')]), z.number()),
    timeline: z.array(timelineDay),
  })
  .readonly();
export type Charts = z.infer<typeof charts>;

/** What each route answers (the body of a 2xx answer), by route. */
export const answers = {
  login: sessionInfo,
  logout: z.object({ ok: z.literal(true) }),
  session: sessionInfo,
  machines: z.object({ machines: z.array(machineSummary), total: z.number(), offset: z.number() }),
  machinesAdded: z.object({ machines: z.array(machineSummary) }),
  machinesRemoved: z.object({ removed: z.array(z.string()) }),
  confirmationInstalled: z.object({ result: machineResult }),
  users: z.object({ users: z.array(userSummary) }),
  userChanged: z.object({ user: userSummary }),
  userRemoved: z.object({ removed: z.string() }),
  passwordSet: z.object({ ok: z.literal(true) }),
  imported: importSummary,
  proxyFiles: z.object({ files: z.array(proxyFileSummary) }),
  machine: z.object({ machine: machineSummary, history: z.array(historyEntry) }),
  keys: z.object({ keys: z.array(keySummary) }),
  keyAdded: z.object({ key: keySummary }),
  operations: z.object({ operations: z.array(operationEntry), total: z.number(), offset: z.number() }),
  report: reportPage,
  makCounters: z.object({ results: z.array(makCountResult) }),
  charts,
  jobs: z.object({ jobs: z.array(jobSummary) }),
  job,
  jobStarted: z.object({ job }),
} as const;
export type Answers = { [K in keyof typeof answers]: z.infer<(typeof answers)[K]> };
