import { z } from 'zod';
import { LICENCE_STATES } from '@volact/core';

/** The agent API version this console speaks (GET /v1/status → `agent.version`). */
export const AGENT_API_VERSION = 1;

/**
 * What the console needs of an agent's GET /v1/status (the installation's licence status).
 * Other fields are kept as they came (the snapshot stores the whole answer); unknown extra
 * fields are no error, so a newer agent's additions do not break an older console.
 */
export const agentStatusSchema = z.looseObject({
  state: z.enum(LICENCE_STATES),
  method: z.enum(['kms', 'mak', 'retail', 'directory', 'oem', 'token']).nullable(),
  expiresAt: z.string().max(64).nullable(),
  host: z.string().max(300).nullable(),
  group: z.string().max(200),
  threshold: z.number(),
  clientMachineId: z.string().max(64),
  installedKey: z.string().max(16).nullable(),
  installedKeyType: z.enum(['gvlk', 'mak', 'retail']).nullable(),
  installationId: z.string().max(400).nullable(),
  count: z.number().nullable(),
  directoryObject: z.object({ name: z.string().max(200), domain: z.string().max(300) }).nullable(),
  lastAttempt: z
    .looseObject({ at: z.string(), ok: z.boolean(), code: z.string().optional(), message: z.string() })
    .nullable(),
  nextAttemptAt: z.string().max(64),
  /** In GET /v1/status only (the answers of changes carry the licence status alone). */
  agent: z.looseObject({ version: z.number() }).optional(),
});

export type AgentStatus = z.infer<typeof agentStatusSchema>;
