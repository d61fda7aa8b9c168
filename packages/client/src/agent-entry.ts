/**
 * `@volact/client/agent`: the local management agent (an HTTP server on fastify) and the
 * agent.json settings it reads. A subpath of its own so that an app embedding the SDK
 * (`import { Licence } from '@volact/client'`) does not load fastify; only the `client agent`
 * command, the console's tests and the benches need it.
 */
export {
  createAgentServer,
  checkAgentTls,
  agentHttpStatus,
  AGENT_API_VERSION,
  MIN_AGENT_TOKEN_LENGTH,
} from './agent.js';
export { checkHostName, readMachineFacts } from './agent-facts.js';
export type { AgentFactsOverrides, AgentMachineFacts } from './agent-facts.js';
export type { AgentServerOptions, AgentTlsOptions, AgentTlsSummary, AgentClientIdentity } from './agent.js';
export {
  readAgentSettings,
  recordAgentSettings,
  readAgentEnrolment,
  recordAgentEnrolment,
  AGENT_SETTINGS_FILE,
} from './agent-settings.js';
export type { AgentSettings, AgentEnrolment } from './agent-settings.js';
