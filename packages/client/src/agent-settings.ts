import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Next to licence.json: the agent's settings stay out of the licence store's schema. */
export const AGENT_SETTINGS_FILE = 'agent.json';

const agentSettingsSchema = z.object({
  format: z.literal('volact-agent/1'),
  /**
   * The reference's "UserOperations": whether a local user without administrator rights may
   * install keys and activate through the CLI. Recorded only: not enforced by the OS here.
   */
  userOperations: z.boolean(),
});

export interface AgentSettings {
  readonly userOperations: boolean;
}

/** What applies when agent.json is absent or unreadable: user operations off (admin only). */
const DEFAULT_SETTINGS: AgentSettings = { userOperations: false };

/**
 * The settings recorded by `volact client agent` in a state directory. A missing, unreadable
 * or malformed file reads as the default (user operations off): it fails closed.
 */
export function readAgentSettings(stateDir: string): AgentSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(stateDir, AGENT_SETTINGS_FILE), 'utf8'));
  } catch {
    return DEFAULT_SETTINGS;
  }
  const parsed = agentSettingsSchema.safeParse(raw);
  return parsed.success ? { userOperations: parsed.data.userOperations } : DEFAULT_SETTINGS;
}

/** Records the agent's settings in the state directory (replaced atomically, owner-only). */
export function recordAgentSettings(stateDir: string, settings: AgentSettings): void {
  const path = join(stateDir, AGENT_SETTINGS_FILE);
  const record: z.infer<typeof agentSettingsSchema> = {
    format: 'volact-agent/1',
    userOperations: settings.userOperations,
  };
  writeFileSync(`${path}.tmp`, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
