import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ClientError } from './errors.js';

/** Next to licence.json: the agent's settings stay out of the licence store's schema. */
export const AGENT_SETTINGS_FILE = 'agent.json';

const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** Records kept for other enrolment tokens than the current one (the newest). */
const MAX_ENROLMENTS = 8;

const enrolmentSchema = z
  .object({
    /** SHA-256 of the enrolment (fleet) token the agent ran with when a console enrolled it. */
    enrolmentTokenSha256: z.string().regex(HEX_SHA256),
    /** SHA-256 of the per-machine token the console gave at enrolment (or its last rotation). */
    machineTokenSha256: z.string().regex(HEX_SHA256),
    enrolledAt: z.string().max(64),
    rotatedAt: z.string().max(64).nullable(),
  })
  .strict();

const agentSettingsSchema = z.object({
  format: z.literal('volact-agent/1'),
  /**
   * The reference's "UserOperations": whether a local user without administrator rights may
   * install keys and activate through the CLI. Recorded only: not enforced by the OS here.
   */
  userOperations: z.boolean(),
  /**
   * The enrolments by consoles (`POST /v1/enrol`), one per enrolment token the agent ran with:
   * only the one of its current enrolment token counts. (Two agents over one state directory,
   * each with its own enrolment token, are two consoles' views of one machine.)
   */
  enrolments: z.array(enrolmentSchema).max(MAX_ENROLMENTS).optional(),
});

export type AgentEnrolment = z.infer<typeof enrolmentSchema>;

export interface AgentSettings {
  readonly userOperations: boolean;
}

/** What applies when agent.json is absent or unreadable: user operations off (admin only). */
const DEFAULT_SETTINGS: AgentSettings = { userOperations: false };

type SettingsRecord = z.infer<typeof agentSettingsSchema>;

function readRecord(stateDir: string): SettingsRecord | null {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(stateDir, AGENT_SETTINGS_FILE), 'utf8'));
  } catch {
    return null;
  }
  const parsed = agentSettingsSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

function writeRecord(stateDir: string, record: SettingsRecord): void {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/**
 * The settings recorded by `volact client agent` in a state directory. A missing, unreadable
 * or malformed file reads as the default (user operations off): it fails closed.
 */
export function readAgentSettings(stateDir: string): AgentSettings {
  const record = readRecord(stateDir);
  return record ? { userOperations: record.userOperations } : DEFAULT_SETTINGS;
}

/**
 * The agent's enrolment under the enrolment token whose SHA-256 (hex) is given, or null before
 * a console enrolled it with that token. A settings file that exists but does not parse is an
 * error (AGENT_SETTINGS_INVALID): read as "not enrolled" it would let the enrolment token in
 * again, so the agent refuses token calls until the file is fixed.
 */
export function readAgentEnrolment(stateDir: string, enrolmentTokenSha256: string): AgentEnrolment | null {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  if (!existsSync(path)) return null;
  const record = readRecord(stateDir);
  if (!record) {
    throw new ClientError(
      'AGENT_SETTINGS_INVALID',
      `${path} is unreadable or malformed: the agent cannot tell whether a console enrolled it, so it refuses token calls; restore the file, or delete it and enrol the machine again (\`volact console machine enrol\`)`,
    );
  }
  return record.enrolments?.find((e) => e.enrolmentTokenSha256 === enrolmentTokenSha256) ?? null;
}

/** Records the agent's settings in the state directory (replaced atomically, owner-only); an enrolment is kept. */
export function recordAgentSettings(stateDir: string, settings: AgentSettings): void {
  const enrolments = readRecord(stateDir)?.enrolments;
  writeRecord(stateDir, {
    format: 'volact-agent/1',
    userOperations: settings.userOperations,
    ...(enrolments ? { enrolments } : {}),
  });
}

/** Records the agent's enrolment under its enrolment token (replacing that token's), keeping the rest. */
export function recordAgentEnrolment(stateDir: string, enrolment: AgentEnrolment): void {
  const current = readRecord(stateDir);
  const others = (current?.enrolments ?? []).filter((e) => e.enrolmentTokenSha256 !== enrolment.enrolmentTokenSha256);
  writeRecord(stateDir, {
    format: 'volact-agent/1',
    userOperations: current?.userOperations ?? DEFAULT_SETTINGS.userOperations,
    enrolments: [...others.slice(-(MAX_ENROLMENTS - 1)), enrolment],
  });
}
