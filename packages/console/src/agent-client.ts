import { z } from 'zod';
import { X509Certificate, randomBytes } from 'node:crypto';
import {
  AGENT_API_VERSION,
  agentProbeProofAt,
  agentStatusSchema,
  secretsEqual,
  sha256,
  type AgentStatus,
} from '@volact/core';
import { agentBaseUrl } from './addresses.js';
import type { AgentConnections } from './agent-connections.js';
import type { AgentTls } from './agent-tls.js';
import { ConsoleError } from './errors.js';
import { TransportError, requestJson } from './http.js';

/** How long a call to an agent may take (an activation waits for the host or authority). */
export const AGENT_TIMEOUTS = { read: 5_000, activate: 30_000 } as const;

const errorBody = z.object({ error: z.object({ code: z.string().max(64), message: z.string().max(2000) }) });
const statusOnly = z.object({ status: agentStatusSchema });
const activationBody = z.object({
  ok: z.boolean(),
  code: z.string().max(64).nullable(),
  message: z.string().max(2000),
  status: agentStatusSchema,
});

export interface AgentActivation {
  readonly ok: boolean;
  readonly code: string | null;
  readonly message: string;
  readonly status: AgentStatus;
}

const probeAnswer = z.looseObject({
  /** Whether a console enrolled the agent: its proof is then under the per-machine token. */
  enrolled: z.boolean().optional(),
  /** null: the agent holds no token (mTLS only); `clientCertificate` then names the caller. */
  proof: z.string().max(128).nullable(),
  clientCertificate: z.object({ subject: z.string().max(200), fingerprint: z.string().max(200) }).optional(),
});

/** What a passed probe says of the agent. */
export interface ProbeResult {
  /** The token this client holds is the agent's per-machine token (a console enrolled it). */
  readonly enrolled: boolean;
  /** The agent takes no token: the console's client certificate (mTLS) authenticated it. */
  readonly byCertificate: boolean;
}

const enrolAnswer = z.looseObject({ enrolled: z.literal(true) });

export interface AgentClientOptions {
  readonly timeoutMs?: number;
  /**
   * For https:// addresses: the CA the agents' certificates chain to (it replaces the system's
   * CAs), and this console's client certificate and key, shown to agents that ask (mTLS).
   */
  readonly tls?: AgentTls;
  /** The console's keep-alive connections to agents (without: a new connection per call). */
  readonly connections?: AgentConnections;
}

/**
 * Calls one machine's agent (`volact client agent`) with the bearer token (and, to an https://
 * address, the console's client certificate when it has one). Every failure is a ConsoleError
 * naming the machine: UNAUTHORIZED (wrong token), AGENT_UNREACHABLE (a TLS refusal too, with
 * its likely cause), AGENT_TIMEOUT, AGENT_BAD_RESPONSE, or AGENT_REFUSED with the agent's own
 * code. The token and the key are never part of a message.
 */
export class AgentClient {
  readonly #base: string;
  #token: string;
  /** After a passed probe: the IP address it reached, where every later call goes. */
  #pinned: string | undefined;
  #lastPeer: { address: string; port: number } | null = null;
  #byCertificate = false;
  readonly #timeoutMs: number;
  readonly #tls: AgentTls | undefined;
  readonly #connections: AgentConnections | undefined;

  constructor(
    readonly address: string,
    token: string,
    options: AgentClientOptions = {},
  ) {
    this.#base = agentBaseUrl(address);
    this.#token = token;
    this.#timeoutMs = options.timeoutMs ?? AGENT_TIMEOUTS.read;
    this.#tls = this.#base.startsWith('https://') ? options.tls : undefined;
    this.#connections = options.connections;
  }

  /**
   * Proves the agent holds this console's token before the token is sent: a nonce out, an HMAC
   * under the token back, over the nonce and the IP address and port this connection reached.
   * Anything else listening at the address never sees the token, and a relay at another address
   * passing on a real agent's answer fails (the agent computed it for its own address). Later
   * calls of this client go to the same IP address (no DNS answer can move them elsewhere).
   * A failed proof is PROOF_FAILED.
   *
   * An agent that authenticates by client certificate alone (mTLS, no token) has no proof to
   * give: it answers `proof: null` and names the client certificate its TLS handshake verified.
   * That is accepted only over the console's own TLS (the agent's certificate verified against
   * agent-ca.pem in the same handshake) and when the named certificate is this console's.
   */
  async probe(): Promise<ProbeResult> {
    const nonce = randomBytes(16).toString('hex');
    const answer = await this.#call('GET', `/v1/probe?nonce=${nonce}`, undefined, probeAnswer, this.#timeoutMs, false);
    const peer = this.#lastPeer;
    if (answer.enrolled === undefined) {
      // An agent of before address-bound probes: no proof this console can check, and no failure either.
      throw new ConsoleError(
        'AGENT_BAD_RESPONSE',
        `agent ${this.address} answers the probe of an older volact (no address-bound proof): upgrade the agent`,
      );
    }
    if (answer.proof === null) {
      const own = this.#tls ? new X509Certificate(this.#tls.cert).fingerprint256 : null;
      if (own === null || answer.clientCertificate?.fingerprint !== own) {
        throw new ConsoleError(
          'AGENT_REFUSED',
          own === null
            ? `agent ${this.address} takes no token: it authenticates consoles by client certificate (mTLS); install this console's with \`volact console agent-tls\` and give the address as https://HOST:PORT: not added`
            : `agent ${this.address} did not verify this console's client certificate (it names another): not added`,
          'UNAUTHORIZED',
        );
      }
      if (peer) this.#pinned = peer.address;
      this.#byCertificate = true;
      return { enrolled: false, byCertificate: true };
    }
    const expected = peer && agentProbeProofAt(sha256(Buffer.from(this.#token)), nonce, peer.address, peer.port);
    if (expected === null || !secretsEqual(answer.proof, expected)) {
      throw new ConsoleError(
        'PROOF_FAILED',
        `what answered at ${this.address} did not prove it holds this console's token for this address: a wrong token, an agent enrolled by another console, or a relay passing on another agent's answers; nothing was sent to it`,
      );
    }
    this.#pinned = (peer as { address: string }).address;
    return { enrolled: answer.enrolled, byCertificate: false };
  }

  /** After a probe: the agent took this console's client certificate instead of a token (mTLS only). */
  get byCertificate(): boolean {
    return this.#byCertificate;
  }

  /**
   * Enrols the agent (after a probe with its enrolment token): hands it `machineToken`, which
   * from then on is the only token it takes; this client uses it from now on.
   */
  async enrol(machineToken: string): Promise<void> {
    await this.#call('POST', '/v1/enrol', { token: machineToken }, enrolAnswer);
    this.#token = machineToken;
  }

  /** Replaces the agent's per-machine token (after a probe with the current one). */
  async rotateToken(machineToken: string): Promise<void> {
    await this.#call('POST', '/v1/token', { token: machineToken }, enrolAnswer);
    this.#token = machineToken;
  }

  async status(): Promise<AgentStatus> {
    const status = await this.#call('GET', '/v1/status', undefined, agentStatusSchema);
    if (status.agent === undefined) {
      throw new ConsoleError(
        'AGENT_BAD_RESPONSE',
        `agent ${this.address} did not name its API version (agent.version): is a volact agent listening at this address?`,
      );
    }
    return status;
  }

  async installationId(): Promise<string> {
    return (
      await this.#call('GET', '/v1/installation-id', undefined, z.object({ installationId: z.string().max(400) }))
    ).installationId;
  }

  async installKey(key: string): Promise<AgentStatus> {
    return (await this.#call('POST', '/v1/key', { key }, statusOnly)).status;
  }

  async activate(authority?: string): Promise<AgentActivation> {
    return this.#call(
      'POST',
      '/v1/activate',
      authority === undefined ? {} : { authority },
      activationBody,
      Math.max(this.#timeoutMs, AGENT_TIMEOUTS.activate),
    );
  }

  async installConfirmation(confirmationId: string): Promise<AgentStatus> {
    return (await this.#call('POST', '/v1/confirmation', { confirmationId }, statusOnly)).status;
  }

  /** Sets the machine's KMS host (HOST[:PORT]); null clears it, back to discovery. */
  async setKmsHost(address: string | null): Promise<AgentStatus> {
    return address === null
      ? (await this.#call('DELETE', '/v1/kms-host', undefined, statusOnly)).status
      : (await this.#call('PUT', '/v1/kms-host', { address }, statusOnly)).status;
  }

  /** Turns the machine's KMS host caching on or off (an agent older than the route: NOT_FOUND, saying so). */
  async setKmsHostCaching(enabled: boolean): Promise<AgentStatus> {
    try {
      return (await this.#call('PUT', '/v1/kms-host-caching', { enabled }, statusOnly)).status;
    } catch (err) {
      if (err instanceof ConsoleError && err.agentCode === 'NOT_FOUND') {
        throw new ConsoleError(
          'AGENT_REFUSED',
          `agent ${this.address} has no KMS host caching switch (PUT /v1/kms-host-caching): upgrade volact on that machine, or set it there with \`volact client set-caching\``,
          'NOT_FOUND',
        );
      }
      throw err;
    }
  }

  /** What to check, for a call that got no answer: a TLS refusal names its side. */
  #likelyCause(err: TransportError): string {
    switch (err.tls) {
      case 'server-certificate':
        return this.#tls
          ? "the agent's TLS certificate does not verify: is it signed by the CA installed with `volact console agent-tls` (agent-ca.pem), unexpired, and made for this address (subjectAltName)?"
          : "the agent's TLS certificate is not trusted: install the CA that signed it with `volact console agent-tls`";
      case 'client-certificate':
        return this.#tls
          ? "the agent refused this console's client certificate (agent-client.pem): is it signed by the CA of the agent's --client-ca, and unexpired?"
          : 'the agent asks for a client certificate (mutual TLS, its --client-ca) and this console has none: install one with `volact console agent-tls`';
      case undefined:
        return 'is `volact client agent` running there and the port open?';
    }
  }

  async #call<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    timeoutMs = this.#timeoutMs,
    authenticated = true,
  ): Promise<T> {
    const where = `agent ${this.address}`;
    let res;
    try {
      res = await requestJson({
        url: new URL(path, this.#base),
        method,
        headers: authenticated ? { authorization: `Bearer ${this.#token}` } : {},
        body,
        timeoutMs,
        maxBytes: 1024 * 1024,
        ...(this.#tls ? { ca: this.#tls.ca, cert: this.#tls.cert, key: this.#tls.key } : {}),
        ...(this.#pinned === undefined ? {} : { connectTo: this.#pinned }),
        ...(this.#connections ? { connections: this.#connections } : {}),
      });
      this.#lastPeer = res.peer;
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      if (err.kind === 'timeout') {
        throw new ConsoleError(
          'AGENT_TIMEOUT',
          `${where} did not answer within ${timeoutMs} ms: is the machine overloaded or the address a black hole?`,
        );
      }
      throw new ConsoleError('AGENT_UNREACHABLE', `${where}: ${err.message}; ${this.#likelyCause(err)}`);
    }
    if (res.status === 401) {
      throw new ConsoleError(
        'UNAUTHORIZED',
        `${where} refused the console's token: another console enrolled it, or it runs with another --admin-token-file; re-enrol it with that token (\`volact console machine enrol MACHINE --token-file F\`)`,
      );
    }
    if (res.status !== 200) {
      const parsed = errorBody.safeParse(res.body);
      if (parsed.success) {
        throw new ConsoleError(
          'AGENT_REFUSED',
          `${where}: ${parsed.data.error.code}: ${parsed.data.error.message}`,
          parsed.data.error.code,
        );
      }
      throw new ConsoleError(
        'AGENT_BAD_RESPONSE',
        `${where} answered HTTP ${res.status} without a volact error body: is a volact agent listening at this address?`,
      );
    }
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) {
      const version = (res.body as { agent?: { version?: unknown } } | undefined)?.agent?.version;
      const issue = parsed.error.issues[0];
      throw new ConsoleError(
        'AGENT_BAD_RESPONSE',
        typeof version === 'number' && version !== AGENT_API_VERSION
          ? `${where} speaks agent API version ${version}; this console knows version ${AGENT_API_VERSION}: upgrade the console`
          : `${where} did not answer like a volact agent (${res.isJson ? `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}` : 'not JSON'})`,
      );
    }
    const version = (parsed.data as { agent?: { version?: number } }).agent?.version;
    if (version !== undefined && version !== AGENT_API_VERSION) {
      throw new ConsoleError(
        'AGENT_BAD_RESPONSE',
        `${where} speaks agent API version ${version}; this console knows version ${AGENT_API_VERSION}: upgrade the console`,
      );
    }
    return parsed.data;
  }
}
