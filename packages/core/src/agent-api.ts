import { z } from 'zod';
import { LICENCE_STATES } from './licence-state.js';

/**
 * The client agent's HTTP API as both ends read it: the agent (`@volact/client`) answers with
 * these shapes, the console (`@volact/console`) parses them. Declared here once so that a field
 * the agent changes is a compile error at the console, not a parse failure in the field.
 */

/** The agent API version (GET /v1/status and /v1/probe → `agent.version`). */
export const AGENT_API_VERSION = 1;

/**
 * How a licence was granted: a KMS host's signed answer, a MAK or a retail key confirmed by
 * the authority, an activation object, an OEM marker, or an activation token of the
 * organisation's CA.
 */
export const LICENCE_METHODS = ['kms', 'mak', 'retail', 'directory', 'oem', 'token'] as const;
export type LicenceMethod = (typeof LICENCE_METHODS)[number];

/** The key types a client installation can hold (a KMS host key goes on a host, never here). */
export const INSTALLED_KEY_TYPES = ['gvlk', 'mak', 'retail'] as const;

/** A KMS host's count travels as an unsigned 32-bit number (wire/messages.ts). */
const MAX_KMS_COUNT = 0xffff_ffff;

/** An ISO 8601 time as the agent writes it (24 characters; an extended year adds a few). */
const time = z.string().max(40);

/**
 * What an agent says of its machine (GET /v1/status `machine`), field by field: the console keeps
 * these as they are, and its export carries them (export.ts, strictly).
 */
export const machineFactsFields = {
  /** A DNS host name is at most 253 characters. */
  hostName: z.string().max(253),
  /** e.g. Linux, Windows_NT, Darwin (os.type()). */
  os: z.string().max(64),
  /** The OS release and version text (os.release(), os.version()). */
  osVersion: z.string().max(256),
  /** The licensed product's version, when its product config names one. */
  productVersion: z.string().max(64).nullable(),
  lastBootAt: time.nullable(),
};

/**
 * What the console keeps of an agent's licence status (GET /v1/status, and the `status` of the
 * answers to changes). The machine's user controls the agent, and the console stores each
 * answer (a history row whenever it changes): every field is bounded, and fields not declared
 * here are dropped, not stored. Dropped, not refused: a newer agent's additions do not make an
 * older console refuse it (z.object strips; neither strict nor loose).
 */
const agentStatusFields = {
  state: z.enum(LICENCE_STATES),
  method: z.enum(LICENCE_METHODS).nullable(),
  expiresAt: time.nullable(),
  /** HOST:PORT (a DNS name is at most 253 characters). */
  host: z.string().max(300).nullable(),
  group: z.string().max(200),
  threshold: z.number().int().min(0).max(1_000_000),
  clientMachineId: z.string().max(64),
  /** The key's last five characters (…ABCDE), never the key. */
  installedKey: z.string().max(16).nullable(),
  installedKeyType: z.enum(INSTALLED_KEY_TYPES).nullable(),
  installationId: z.string().max(400).nullable(),
  count: z.number().int().min(0).max(MAX_KMS_COUNT).nullable(),
  directoryObject: z.object({ name: z.string().max(255), domain: z.string().max(300) }).nullable(),
  lastAttempt: z
    .object({
      at: time,
      ok: z.boolean(),
      code: z.string().max(64).optional(),
      /**
       * The console keeps 2 000 characters of an agent's messages (its error and activation
       * answers too): a genuine long message (many discovery domains failing) is cut, not
       * refused; only an absurd one is.
       */
      message: z
        .string()
        .max(65_536)
        .transform((message) => message.slice(0, 2_000)),
      host: z.string().max(300).optional(),
      // Not an enum: a newer agent's way of finding a host must not make the whole status refused.
      via: z.string().max(16).optional(),
      domain: z.string().max(255).optional(),
      count: z.number().int().min(0).max(MAX_KMS_COUNT).optional(),
      threshold: z.number().int().min(0).max(1_000_000).optional(),
    })
    .nullable(),
  nextAttemptAt: time,
  /**
   * How the machine finds a KMS host: its DNS domains and server, and host caching (on: the host
   * DNS found is kept for renewals; PUT /v1/kms-host-caching). Optional: an older console's
   * stored statuses have none.
   */
  discovery: z
    .object({
      domains: z.array(z.string().max(255)).max(64),
      dnsServer: z.string().max(300).nullable(),
      caching: z.boolean(),
      cachedHost: z.string().max(300).nullable(),
    })
    .optional(),
  /** In GET /v1/status only (the answers of changes carry the licence status alone). */
  agent: z.object({ version: z.number().int().min(0).max(1_000_000) }).optional(),
  /** In GET /v1/status only: whether the machine's users may change the licence themselves. */
  userOperations: z.boolean().optional(),
  /**
   * In GET /v1/status only: the machine as people know it (the console shows and searches
   * these). Optional: an older agent has none. Not part of the licence status (no history row
   * when only these change).
   */
  machine: z.object(machineFactsFields).optional(),
};

export const agentStatusSchema = z.object(agentStatusFields);

/** An agent's licence status as the console keeps it (the declared fields only). */
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/**
 * What an agent must answer with: the fields above (it may send more; the console drops them).
 * The agent types its replies by it; an interface with those fields is assignable to it.
 */
export type AgentStatusReply = z.infer<z.ZodObject<typeof agentStatusFields>>;
