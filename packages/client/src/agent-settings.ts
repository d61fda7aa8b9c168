import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ClientError } from './errors.js';
import { ParsedFiles } from './parsed-files.js';

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

/** The settings read, by path, with the text each was parsed from (see ParsedFiles). */
const settingsRecords = new ParsedFiles<SettingsRecord | null>();

function readRecord(stateDir: string): SettingsRecord | null {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  // Read at every call; parsed and checked again whenever its text is not the last one's.
  return settingsRecords.parse(path, text, (t) => {
    let raw: unknown;
    try {
      raw = JSON.parse(t);
    } catch {
      return null;
    }
    const parsed = agentSettingsSchema.safeParse(raw);
    return parsed.success ? parsed.data : null;
  });
}

/**
 * The record to update, or null when there is no file yet. A file that exists but does not
 * parse is AGENT_SETTINGS_INVALID: rewritten without its enrolments, it would let the enrolment
 * token in again (see readAgentEnrolment).
 */
function recordToUpdate(stateDir: string): SettingsRecord | null {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  if (!existsSync(path)) return null;
  const record = readRecord(stateDir);
  if (!record) throw settingsInvalid(path);
  return record;
}

const settingsInvalid = (path: string) =>
  new ClientError(
    'AGENT_SETTINGS_INVALID',
    `${path} is unreadable or malformed: the agent cannot tell whether a console enrolled it, so it refuses token calls; restore the file, or delete it and enrol the machine again (\`volact console machine enrol\`)`,
  );

/**
 * Replaces agent.json atomically, owner-only: it holds the SHA-256 of the per-machine token,
 * the key of the agent's probe proof. The temporary file is made 0600 before the rename also
 * when it was left over from an earlier run with another mode (`mode` applies only on create).
 */
function writeRecord(stateDir: string, record: SettingsRecord): void {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
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
  const record = recordToUpdate(stateDir);
  if (!record) return null;
  return record.enrolments?.find((e) => e.enrolmentTokenSha256 === enrolmentTokenSha256) ?? null;
}

/**
 * Records the agent's settings in the state directory (replaced atomically, owner-only); the
 * enrolments are kept. A file that exists but does not parse is AGENT_SETTINGS_INVALID (naming
 * the file and the fix), never replaced: `client agent` runs this at every start, and a
 * rewrite would drop the enrolments and so open the agent to the enrolment token again.
 */
export function recordAgentSettings(stateDir: string, settings: AgentSettings): void {
  const enrolments = recordToUpdate(stateDir)?.enrolments;
  writeRecord(stateDir, {
    format: 'volact-agent/1',
    userOperations: settings.userOperations,
    ...(enrolments ? { enrolments } : {}),
  });
}

/** Records the agent's enrolment under its enrolment token (replacing that token's), keeping the rest. */
export function recordAgentEnrolment(stateDir: string, enrolment: AgentEnrolment): void {
  const current = recordToUpdate(stateDir);
  const others = (current?.enrolments ?? []).filter((e) => e.enrolmentTokenSha256 !== enrolment.enrolmentTokenSha256);
  writeRecord(stateDir, {
    format: 'volact-agent/1',
    userOperations: current?.userOperations ?? DEFAULT_SETTINGS.userOperations,
    enrolments: [...others.slice(-(MAX_ENROLMENTS - 1)), enrolment],
  });
}
