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

/**
 * What the console needs of an agent's licence status (GET /v1/status, and the `status` of the
 * answers to changes). Other fields are kept as they came (the console stores the whole
 * answer); unknown extra fields are no error, so a newer agent's additions do not break an
 * older console.
 */
const agentStatusFields = {
  state: z.enum(LICENCE_STATES),
  method: z.enum(LICENCE_METHODS).nullable(),
  expiresAt: z.string().max(64).nullable(),
  host: z.string().max(300).nullable(),
  group: z.string().max(200),
  threshold: z.number(),
  clientMachineId: z.string().max(64),
  installedKey: z.string().max(16).nullable(),
  installedKeyType: z.enum(INSTALLED_KEY_TYPES).nullable(),
  installationId: z.string().max(400).nullable(),
  count: z.number().nullable(),
  directoryObject: z.object({ name: z.string().max(200), domain: z.string().max(300) }).nullable(),
  lastAttempt: z
    .looseObject({ at: z.string(), ok: z.boolean(), code: z.string().optional(), message: z.string() })
    .nullable(),
  nextAttemptAt: z.string().max(64),
  /** In GET /v1/status only (the answers of changes carry the licence status alone). */
  agent: z.looseObject({ version: z.number() }).optional(),
  /** In GET /v1/status only: whether the machine's users may change the licence themselves. */
  userOperations: z.boolean().optional(),
};

export const agentStatusSchema = z.looseObject(agentStatusFields);

/** An agent's licence status as the console keeps it (with whatever else the agent sent). */
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/**
 * What an agent must answer with: the fields above (more are allowed, see agentStatusSchema).
 * The agent types its replies by it; an interface with those fields is assignable to it.
 */
export type AgentStatusReply = z.infer<z.ZodObject<typeof agentStatusFields>>;
