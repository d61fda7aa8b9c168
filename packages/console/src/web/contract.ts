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
export const JOB_OPERATIONS = ['refresh', 'install-key', 'activate', 'proxy-activate', 'reactivate'] as const;
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

/** POST /api/jobs: machines by id, name or address, or every machine. */
export const jobRequest = z.strictObject({
  operation: z.enum(JOB_OPERATIONS),
  machines: z.union([
    z.literal('all'),
    z
      .array(z.union([z.string().min(1).max(300), z.number().int().nonnegative()]))
      .min(1)
      .max(MAX_JOB_MACHINES),
  ]),
  /** install-key: a stored key's name. */
  key: z.string().min(1).max(64).optional(),
  /** activate and proxy-activate: the authority's URL. */
  authority: z.string().min(1).max(2000).optional(),
});
export type LoginRequest = z.infer<typeof loginRequest>;
export type KeyRequest = z.infer<typeof keyRequest>;
export type JobRequest = z.infer<typeof jobRequest>;

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
  /** When the operation as a whole failed (no machine was called, or it stopped). */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
};
/** A bulk operation run by the server, with its results so far (in the machines' order once finished). */
export const job = z.object({ ...jobFields, results: z.array(machineResult) });
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
  machines: z.object({ machines: z.array(machineSummary) }),
  machine: z.object({ machine: machineSummary, history: z.array(historyEntry) }),
  keys: z.object({ keys: z.array(keySummary) }),
  keyAdded: z.object({ key: keySummary }),
  operations: z.object({ operations: z.array(operationEntry) }),
  report,
  makCounters: z.object({ results: z.array(makCountResult) }),
  charts,
  jobs: z.object({ jobs: z.array(jobSummary) }),
  job,
  jobStarted: z.object({ job }),
} as const;
export type Answers = { [K in keyof typeof answers]: z.infer<(typeof answers)[K]> };
