import type { TLSSocket } from 'node:tls';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyHttpOptions,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Server } from 'node:http';
import { z } from 'zod';
import {
  AGENT_API_VERSION,
  agentProbeProofAt,
  secretsEqual,
  sha256,
  systemClock,
  type AgentStatusReply,
  type Clock,
} from '@volact/core';
import { readMachineFacts, type AgentFactsOverrides } from './agent-facts.js';
import { readAgentEnrolment, readAgentSettings, recordAgentEnrolment } from './agent-settings.js';
import {
  checkAgentTls,
  clientIdentityOf,
  identityOf,
  type AgentClientIdentity,
  type AgentTlsOptions,
} from './agent-tls.js';

export { checkAgentTls };
export type { AgentClientIdentity, AgentTlsOptions, AgentTlsSummary } from './agent-tls.js';
import { ClientError, type ClientErrorCode } from './errors.js';
import { Licence, type LicenceStatus } from './licence.js';

/** The version of the agent's API (declared in core with the status the console reads). */
export { AGENT_API_VERSION };
/** A shorter token could be guessed; `volact client agent` refuses one too. */
export const MIN_AGENT_TOKEN_LENGTH = 16;
/** The largest body a route takes is an authority URL: 8 KiB is ample. */
const BODY_LIMIT = 8 * 1024;

/**
 * The HTTP status of each client error code, in one table: the agent answers
 * `{error: {code, message}}` with it. Codes of an activation attempt (KMS_*, AUTHORITY_*, …)
 * normally come back as data in POST /v1/activate (HTTP 200); the table still maps them, so a
 * thrown one never becomes a 500.
 */
export const agentHttpStatus: Readonly<Record<ClientErrorCode, number>> = {
  CLIENT_NOT_INITIALISED: 409,
  CLIENT_EXISTS: 409,
  PRODUCT_CONFIG_INVALID: 409,
  KEY_INVALID: 400,
  NO_MAK_INSTALLED: 409,
  HOST_ADDRESS_INVALID: 400,
  NO_KMS_HOST: 409,
  KMS_UNREACHABLE: 502,
  KMS_TIMEOUT: 504,
  KMS_MALFORMED_RESPONSE: 502,
  KMS_HOST_ERROR: 502,
  KMS_CERT_UNTRUSTED: 502,
  KMS_CERT_EXPIRED: 502,
  KMS_CERT_GROUP_MISMATCH: 502,
  KMS_BAD_SIGNATURE: 502,
  KMS_NONCE_MISMATCH: 502,
  KMS_GROUP_MISMATCH: 502,
  KMS_CLIENT_MISMATCH: 502,
  KMS_CLOCK_SKEW: 502,
  KMS_THRESHOLD_NOT_MET: 409,
  KMS_HOST_REVOKED: 502,
  KMS_HOST_STATUS_MISSING: 502,
  TRUST_FILE_INVALID: 400,
  CID_SIGNER_UNKNOWN: 400,
  NO_AUTHORITY: 409,
  AUTHORITY_UNREACHABLE: 502,
  AUTHORITY_URL_INSECURE: 400,
  CONFIRMATION_INVALID: 400,
  ACTIVATION_UNTRUSTED: 502,
  DOMAIN_INVALID: 400,
  NO_DIRECTORY_OBJECT: 409,
  DIRECTORY_OBJECT_INVALID: 502,
  DIRECTORY_OBJECT_UNTRUSTED: 502,
  DIRECTORY_OBJECT_DOMAIN_MISMATCH: 409,
  DIRECTORY_OBJECT_GROUP_MISMATCH: 502,
  OEM_MARKER_INVALID: 400,
  OEM_MANUFACTURER_UNTRUSTED: 400,
  OEM_MANUFACTURER_REVOKED: 400,
  OEM_CERT_EXPIRED: 400,
  OEM_GROUP_MISMATCH: 400,
  OEM_HARDWARE_MISMATCH: 409,
  TOKEN_INVALID: 400,
  TOKEN_CA_UNTRUSTED: 400,
  TOKEN_GROUP_MISMATCH: 400,
  TOKEN_CA_REVOKED: 400,
  TOKEN_HARDWARE_MISMATCH: 409,
  TOKEN_EXPIRED: 409,
  TOKEN_REVOKED: 409,
  NO_TOKEN: 409,
  CRL_INVALID: 400,
  CRL_OUTDATED: 409,
  ACT_TYPE_FORBIDS: 409,
  ACT_TYPE_INVALID: 400,
  LICENCE_TAMPERED: 409,
  LICENCE_STORE_DAMAGED: 409,
  PRODUCT_FILE_CHANGED: 409,
  DIRECTORY_OBJECT_EXPIRED: 502,
  TOKEN_CRL_REQUIRED: 409,
  AGENT_TLS_INVALID: 500,
  UNAUTHORIZED: 401,
  AGENT_SETTINGS_INVALID: 500,
  ALREADY_ENROLLED: 409,
  NOT_ENROLLED: 409,
  AUTHORITY_NOT_ALLOWED: 403,
  REQUEST_INVALID: 400,
  NOT_FOUND: 404,
  INTERNAL: 500,
};

const keyBody = z.object({ key: z.string().min(1).max(64) }).strict();
const activateBody = z.object({ authority: z.string().min(1).max(2048).optional() }).strict();
const confirmationBody = z.object({ confirmationId: z.string().min(1).max(200) }).strict();
const kmsHostBody = z.object({ address: z.string().min(1).max(300) }).strict();
/** KMS host caching on or off (the reference's slmgr /ckhc and /skhc). */
const hostCachingBody = z.object({ enabled: z.boolean() }).strict();
const noBody = z.object({}).strict();
/** A console's per-machine token (enrolment, rotation): what the agent keeps is its SHA-256. */
const machineTokenBody = z.object({ token: z.string().min(MIN_AGENT_TOKEN_LENGTH).max(512).regex(/^\S+$/) }).strict();

/** An authority URL as compared with the agent's list: parsed, without a trailing slash. */
function normalAuthority(text: string): string | null {
  try {
    return new URL(text).href.replace(/\/+$/, '');
  } catch {
    return null;
  }
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'body';
    throw new ClientError('REQUEST_INVALID', `${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** A specific message for the request errors fastify raises before a route runs. */
function describeRequestError(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the body is larger than ${BODY_LIMIT} bytes`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'the body must be JSON (content-type: application/json)';
    case 'FST_ERR_BAD_URL':
      return 'the URL is not valid (a bad %-escape?)';
    default:
      return err.message;
  }
}

/**
 * The JSON body parser: the parse error's own words (where it failed), no prototype keys, and
 * an empty body read as none (so DELETE and a bare POST /v1/activate need no `{}`).
 */
function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        throw new ClientError('REQUEST_INVALID', `the body holds a forbidden key "${key}"`);
      }
      return value;
    });
  } catch (err) {
    if (err instanceof ClientError) throw err;
    throw new ClientError('REQUEST_INVALID', `the body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

/** The path of a URL, without its query (which is never logged or echoed), bounded. */
const pathOf = (url: string) => (url.split('?')[0] ?? '').slice(0, 200);

export interface AgentServerOptions {
  /** The installation's state directory (shared with `volact client …` commands). */
  readonly stateDir: string;
  /**
   * This machine's hardware id and directory membership, read by the caller at start (never from
   * the store): passed to every Licence.open (see OpenOptions).
   */
  readonly machine?: { readonly hardwareId?: string; readonly memberDomain?: string | null };
  /**
   * The bearer token every call must carry (at least 16 characters). Never logged. Optional
   * only with `tls.clientCa`: the verified client certificate then authenticates the console;
   * with both, a call needs both.
   */
  readonly adminToken?: string;
  /** Serve HTTPS with this certificate; with `clientCa`, mutual TLS. Checked by checkAgentTls. */
  readonly tls?: AgentTlsOptions;
  /** A pino logger (e.g. `createLogger` of the CLI); without it nothing is logged. */
  readonly logger?: FastifyBaseLogger;
  /**
   * The authorities a console may name in POST /v1/activate (`client agent --authority`); any
   * other URL is refused (AUTHORITY_NOT_ALLOWED). A call without one uses the product config's.
   */
  readonly authorities?: readonly string[];
  /** How long an activation waits for the KMS host or authority (default 5 000 ms). */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /**
   * The machine as people know it (GET /v1/status `machine`) is read from this host once, at
   * start; these replace what is read (tests run many agents on one host, each its own host
   * name; `client agent --host-name`).
   */
  readonly facts?: AgentFactsOverrides;
}

/**
 * The agent management endpoint: a console manages this installation over HTTP JSON, under
 * /v1, with a bearer token, a verified client certificate (mTLS), or both. Every request
 * reopens the licence store, so what a `volact client` command did meanwhile is seen. Errors
 * are `{error: {code, message}}` with the status of `agentHttpStatus`. Bodies and the
 * Authorization header are never logged.
 *
 * With `tls` the instance serves HTTPS (`app.server` is then an https.Server).
 */
export function createAgentServer(options: AgentServerOptions): FastifyInstance {
  const { adminToken, tls, stateDir } = options;
  const mtls = tls?.clientCa !== undefined;
  if (adminToken === undefined) {
    if (!mtls) {
      throw new RangeError(
        "the agent needs an admin token (a console's bearer token), or mutual TLS (tls.clientCa) to authenticate a console",
      );
    }
  } else if (typeof adminToken !== 'string' || adminToken.length < MIN_AGENT_TOKEN_LENGTH) {
    throw new RangeError(`the agent's admin token must have at least ${MIN_AGENT_TOKEN_LENGTH} characters`);
  }
  if (tls) checkAgentTls(tls);
  const clock = options.clock ?? systemClock;
  // Once: the boot time is computed from the uptime now, so it does not jitter between calls.
  const machineFacts = readMachineFacts(clock, options.facts);
  const allowedAuthorities = new Set(
    (options.authorities ?? []).map((a) => {
      const normal = normalAuthority(a);
      if (normal === null) throw new RangeError(`the agent's authority ${a.slice(0, 200)} is not a URL`);
      return normal;
    }),
  );
  const tokenHash = adminToken === undefined ? null : sha256(Buffer.from(adminToken));
  const tokenHashHex = tokenHash?.toString('hex') ?? null;
  /**
   * The enrolment in force, or null: one recorded under another enrolment token (the agent was
   * restarted with a new --admin-token-file) no longer counts, which is how a machine's local
   * administrator opens it to enrolment again.
   */
  const enrolment = () => {
    if (tokenHashHex === null) return null;
    return readAgentEnrolment(stateDir, tokenHashHex);
  };
  /**
   * The SHA-256 of the token calls must carry: the per-machine token once a console enrolled
   * this agent, the enrolment (fleet) token before; null with mTLS alone.
   */
  const acceptedTokenHash = () => {
    const enrolled = enrolment();
    return enrolled ? Buffer.from(enrolled.machineTokenSha256, 'hex') : tokenHash;
  };
  const authorized = (authorization: string | undefined) => {
    const given = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
    const accepted = acceptedTokenHash();
    // Hashed first, so the comparison takes the same time whatever the lengths.
    return {
      ok: accepted === null || (given !== undefined && secretsEqual(sha256(Buffer.from(given)), accepted)),
      given: given !== undefined,
    };
  };
  const refuse = (request: FastifyRequest, reason: string, client: AgentClientIdentity | null) => {
    request.log.warn(
      {
        from: request.ip,
        method: request.method,
        path: pathOf(request.url),
        reason,
        ...(mtls ? { client } : {}),
      },
      'unauthorized request refused',
    );
    return new ClientError(
      'UNAUTHORIZED',
      tokenHash === null
        ? 'agent calls need a client certificate signed by the CA of --client-ca (mutual TLS)'
        : `agent calls need \`Authorization: Bearer <token>\` with the token of --admin-token-file (once a console enrolled this agent: the per-machine token it gave)${mtls ? ', over TLS with a client certificate signed by the CA of --client-ca' : ''}`,
    );
  };
  /**
   * The ordered checks of a call: (1) with mTLS, a verified client certificate (the connection
   * listener below already dropped every other connection: this is the second line); (2) with
   * a token, the bearer token. `refusal` is null when the call may go on; `client` is the
   * verified client certificate (null without mTLS).
   */
  const authenticate = (request: FastifyRequest, tokenNeeded: boolean) => {
    const client = mtls ? clientIdentityOf(request.raw.socket) : null;
    if (mtls && client === null) return { refusal: refuse(request, 'no verified client certificate', null), client };
    if (tokenNeeded) {
      let auth;
      try {
        auth = authorized(request.headers.authorization);
      } catch (err) {
        // agent.json unreadable: fail closed, with the reason.
        if (err instanceof ClientError) return { refusal: err, client };
        throw err;
      }
      if (!auth.ok) return { refusal: refuse(request, auth.given ? 'wrong token' : 'no bearer token', client), client };
    }
    return { refusal: null, client };
  };
  const sendError = (reply: FastifyReply, err: ClientError) =>
    reply.status(agentHttpStatus[err.code]).send({ error: { code: err.code, message: err.message } });

  const settings: FastifyHttpOptions<Server> = {
    ...(options.logger ? { loggerInstance: options.logger } : {}),
    bodyLimit: BODY_LIMIT,
    // Errors found before routing (a bad %-escape in the URL): the caller is still checked first.
    frameworkErrors: (err, request, reply) => {
      const { refusal } = authenticate(request, true);
      if (refusal) {
        void sendError(reply, refusal);
        return;
      }
      const message = describeRequestError(err);
      request.log.info({ code: 'REQUEST_INVALID', from: request.ip, reason: message }, 'refused');
      void sendError(reply, new ClientError('REQUEST_INVALID', message));
    },
  };
  // With `https`, fastify serves an https.Server; routes, hooks and inject() are the same, so
  // the instance keeps the plain type (the assertion only lets the `https` key through).
  const app = Fastify(
    tls
      ? ({
          ...settings,
          https: {
            cert: tls.cert,
            key: tls.key,
            // rejectUnauthorized would drop a console of another CA inside Node, before anything
            // can log who it was; the connection listener below drops it instead, right after
            // the handshake and before a byte of HTTP is read (RFC 8446 §4.4.2.4 lets a server
            // either abort or go on without client authentication).
            ...(mtls ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
          },
        } as FastifyHttpOptions<Server>)
      : settings,
  );

  if (tls) {
    // Handshakes that fail (a plain-HTTP client, a scanner, no common cipher): one line each.
    app.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      app.log.info({ from: socket.remoteAddress ?? null, reason: err.code ?? err.message }, 'TLS handshake failed');
    });
  }
  if (mtls) {
    // Before the HTTP server sees the connection: no verified client certificate, no HTTP.
    app.server.prependListener('secureConnection', (socket: TLSSocket) => {
      if (socket.authorized) return;
      const presented = identityOf(socket.getPeerCertificate());
      const code = String(socket.authorizationError ?? 'unverified');
      app.log.warn(
        {
          from: socket.remoteAddress ?? null,
          reason: presented
            ? `client certificate not signed by the CA of --client-ca (${code})`
            : 'no client certificate',
          client: presented,
        },
        'TLS client refused',
      );
      socket.destroy();
    });
  }
  // JSON only: any other content type is refused before a route runs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  const open = () =>
    Licence.open({
      stateDir,
      ...options.machine,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.clock ? { clock: options.clock } : {}),
    });

  // Changes run one at a time (each reads the store, changes it and writes it back); reads do not wait.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(change: () => Promise<T> | T): Promise<T> => {
    const result = queue.then(change);
    queue = result.catch(() => undefined);
    return result;
  };

  // Before the body is read: an unauthenticated caller learns nothing, not even which routes exist.
  app.addHook('onRequest', async (request) => {
    // The discovery probe needs no token: it proves the agent holds the token without asking
    // for it. With mTLS it still needs the verified client certificate.
    const probe = request.method === 'GET' && request.url.split('?')[0] === '/v1/probe';
    const { refusal, client } = authenticate(request, !probe);
    if (refusal) throw refusal;
    if (client) {
      // Every line of this request names the console's certificate; the call itself too.
      request.log = request.log.child({ client });
      request.log.info({ from: request.ip, method: request.method, path: pathOf(request.url) }, 'management call');
    }
  });

  app.setErrorHandler(async (err, request, reply) => {
    if (err instanceof ClientError) {
      if (err.code !== 'UNAUTHORIZED') request.log.info({ code: err.code, from: request.ip }, 'refused');
      return sendError(reply, err);
    }
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const message = describeRequestError(err as FastifyError);
      request.log.info({ code: 'REQUEST_INVALID', from: request.ip, reason: message }, 'refused');
      return reply.status(400).send({ error: { code: 'REQUEST_INVALID', message } });
    }
    request.log.error({ err }, 'internal error');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the agent log' } });
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${pathOf(request.url)}` } }),
  );

  // Typed as the console reads it (core's agentStatusSchema): a field changed here without the
  // contract fails to compile instead of failing every console's parse.
  const statusOnly = (status: LicenceStatus): { status: AgentStatusReply } => ({ status });

  app.get('/v1/probe', async (request) => {
    const nonce = (request.query as { nonce?: unknown }).nonce;
    if (typeof nonce !== 'string' || !/^[0-9a-f]{32,128}$/.test(nonce)) {
      throw new ClientError('REQUEST_INVALID', 'the probe needs ?nonce= with 32 to 128 lower-case hex digits');
    }
    // With mTLS and no token there is nothing to prove a token with: the answer names the
    // client certificate the TLS handshake verified (the console checks it is its own; the
    // agent's own certificate was verified by the console in the same handshake).
    const client = mtls ? clientIdentityOf(request.raw.socket) : null;
    const accepted = acceptedTokenHash();
    // Bound to this end of the connection: what the console dialled, unless something relayed it.
    const socket = request.raw.socket;
    return {
      agent: { version: AGENT_API_VERSION },
      enrolled: enrolment() !== null,
      proof:
        accepted === null ? null : agentProbeProofAt(accepted, nonce, socket.localAddress ?? '', socket.localPort ?? 0),
      ...(client ? { clientCertificate: client } : {}),
    };
  });

  app.get('/v1/status', async (): Promise<AgentStatusReply> => ({
    ...open().status(),
    userOperations: readAgentSettings(stateDir).userOperations,
    agent: { version: AGENT_API_VERSION },
    machine: machineFacts,
  }));

  app.get('/v1/installation-id', async () => ({ installationId: open().installationId() }));

  app.post('/v1/key', async (request) => {
    const { key } = parseBody(keyBody, request.body);
    return serially(() => {
      const licence = open();
      licence.installKey(key);
      const status = licence.status();
      // The status holds the key's last five characters only.
      request.log.info({ key: status.installedKey, keyType: status.installedKeyType }, 'key installed');
      return statusOnly(status);
    });
  });

  app.post('/v1/activate', async (request) => {
    const body = parseBody(activateBody, request.body === undefined ? {} : request.body);
    if (body.authority !== undefined) {
      const normal = normalAuthority(body.authority);
      const productAuthority = open().productAuthorityUrl;
      const own = productAuthority === null ? null : normalAuthority(productAuthority);
      if (normal === null || (normal !== own && !allowedAuthorities.has(normal))) {
        // The console's URL is not echoed (it could carry credentials): only its origin, bounded.
        const origin = normal === null ? 'a malformed URL' : new URL(normal).origin.slice(0, 200);
        throw new ClientError(
          'AUTHORITY_NOT_ALLOWED',
          `this agent activates only at the product config's authority${allowedAuthorities.size ? ' or one given with --authority' : ''}: ${origin} is not one of them (start the agent with \`--authority URL\` to allow it)`,
        );
      }
    }
    return serially(async () => {
      const outcome = await open().activate(body.authority === undefined ? {} : { authority: body.authority });
      // Not the authority URL: it is the console's input and could carry credentials.
      request.log.info(
        { ok: outcome.ok, code: outcome.code, state: outcome.status.state, method: outcome.status.method },
        'activation attempted',
      );
      const status: AgentStatusReply = outcome.status;
      return { ok: outcome.ok, code: outcome.code, message: outcome.message, status };
    });
  });

  app.post('/v1/confirmation', async (request) => {
    const { confirmationId } = parseBody(confirmationBody, request.body);
    return serially(() => {
      const status = open().installConfirmation(confirmationId);
      request.log.info({ state: status.state, method: status.method }, 'confirmation ID installed');
      return statusOnly(status);
    });
  });

  /**
   * Enrolment: a console that proved it reached this agent hands it a per-machine token (with
   * the enrolment token as bearer). From then on only that token opens the agent; the
   * enrolment token is refused, so one leaked from any machine opens no enrolled one.
   */
  app.post('/v1/enrol', async (request) => {
    const { token } = parseBody(machineTokenBody, request.body);
    return serially(() => {
      if (tokenHashHex === null) {
        throw new ClientError('NOT_ENROLLED', 'this agent takes no token (mutual TLS only): there is nothing to enrol');
      }
      if (enrolment() !== null) {
        throw new ClientError(
          'ALREADY_ENROLLED',
          'a console enrolled this agent already: rotate its token (`volact console rotate-token`) instead',
        );
      }
      const machineTokenSha256 = sha256(Buffer.from(token)).toString('hex');
      if (machineTokenSha256 === tokenHashHex) {
        throw new ClientError('REQUEST_INVALID', 'token: the per-machine token must differ from the enrolment token');
      }
      const now = new Date(clock.now()).toISOString();
      recordAgentEnrolment(stateDir, {
        enrolmentTokenSha256: tokenHashHex,
        machineTokenSha256,
        enrolledAt: now,
        rotatedAt: null,
      });
      request.log.info('enrolled by a console: the enrolment token no longer opens this agent');
      return { enrolled: true, enrolledAt: now };
    });
  });

  /** Rotation: the per-machine token (as bearer) replaced by a new one, effective at once. */
  app.post('/v1/token', async (request) => {
    const { token } = parseBody(machineTokenBody, request.body);
    return serially(() => {
      const current = enrolment();
      if (current === null) {
        throw new ClientError(
          'NOT_ENROLLED',
          'no console enrolled this agent: enrol it (`volact console machine add`)',
        );
      }
      const machineTokenSha256 = sha256(Buffer.from(token)).toString('hex');
      if (machineTokenSha256 === current.enrolmentTokenSha256) {
        throw new ClientError('REQUEST_INVALID', 'token: the per-machine token must differ from the enrolment token');
      }
      const now = new Date(clock.now()).toISOString();
      recordAgentEnrolment(stateDir, { ...current, machineTokenSha256, rotatedAt: now });
      request.log.info('machine token rotated');
      return { enrolled: true, rotatedAt: now };
    });
  });

  app.put('/v1/kms-host', async (request) => {
    const { address } = parseBody(kmsHostBody, request.body);
    return serially(() => {
      const licence = open();
      licence.setKmsHost(address);
      const status = licence.status();
      request.log.info({ host: status.host }, 'KMS host set');
      return statusOnly(status);
    });
  });

  app.delete('/v1/kms-host', async (request) => {
    parseBody(noBody, request.body === undefined ? {} : request.body);
    return serially(() => {
      const licence = open();
      licence.setKmsHost(null);
      request.log.info('KMS host cleared');
      return statusOnly(licence.status());
    });
  });

  /** KMS host caching: on, a host found in DNS is kept for renewals until it stops answering. */
  app.put('/v1/kms-host-caching', async (request) => {
    const { enabled } = parseBody(hostCachingBody, request.body);
    return serially(() => {
      const licence = open();
      licence.setHostCaching(enabled);
      const status = licence.status();
      request.log.info({ caching: status.discovery.caching }, 'KMS host caching set');
      return statusOnly(status);
    });
  });

  return app;
}
