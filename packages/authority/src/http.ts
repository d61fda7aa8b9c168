import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Authority, Confirmation } from './authority.js';
import { AuthorityError } from './errors.js';
import { RateLimiter } from './rate-limiter.js';
import { ApiAuth, refusalExtras } from './api/auth.js';
import { registerApi } from './api/register.js';
import { DEFAULT_WEB_ROOT, registerPortalAssets } from './portal-assets.js';
import {
  bulkConfirmationRequestSchema,
  confirmationRequestSchema,
  hostActivationRequestSchema,
  hostStatusRequestSchema,
  installationActivationRequestSchema,
  parseInstallationId,
  parseKey,
  systemClock,
  type BulkConfirmationReply,
  type BulkConfirmationResult,
  type Clock,
  type ConfirmationReply,
  type ErrorReply,
  type HealthReply,
  type HostActivationReply,
  type HostStatusReply,
  type RevocationsReply,
  type TrustReply,
  type InstallationActivationReply,
} from '@volact/core';

/** Codes whose message names the operator's files or database: clients get these words instead. */
const OPERATOR_ONLY_DETAIL: Readonly<Record<string, string>> = {
  STORE_UNAVAILABLE: "the authority's database is unreachable; retry later",
  STORE_DAMAGED: "the authority's database cannot be used; its operator has the details in the log",
  AUTHORITY_FILE_DAMAGED: 'a file of the authority is damaged; its operator has the details in the log',
  DATA_DIR_INSECURE: "the authority's data directory is not private; its operator has the details in the log",
};

/**
 * The subject a key is rate-limited under: one canonical form however it was typed (lower
 * case, no dashes, I/L for 1, O for 0), so a re-spelled key counts against the same budget.
 */
export function keySubject(text: string): string {
  try {
    return `key:${parseKey(text).text}`;
  } catch {
    return `key?:${text.toUpperCase().replace(/[^0-9A-Z]/g, '')}`; // refused anyway; still counted
  }
}

/** An installation ID is limited under the key it was made with (its key reference), not its spelling. */
export function iidKeySubject(text: string): string {
  try {
    return `keyref:${parseInstallationId(text).keyRef.toString('hex')}`;
  } catch {
    return `iid?:${text.replace(/\D/g, '').slice(0, 20)}`;
  }
}

/** Seconds a client is told to wait before retrying while the database is unreachable. */
export const STORE_RETRY_AFTER_SECONDS = 2;

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AuthorityError('REQUEST_INVALID', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** The domain's answers in the wire shapes of core's authority API (arrays copied out of their readonly form). */
function confirmationReply(c: Confirmation): ConfirmationReply {
  return c.kind === 'kms-host' ? { ...c, groups: [...c.groups] } : { ...c };
}

function rateLimited(what: string, waitMs: number): AuthorityError {
  const seconds = Math.ceil(waitMs / 1000);
  const err = new AuthorityError('RATE_LIMITED', `${what}; retry in ${seconds} s`);
  err.retryAfterSeconds = seconds;
  return err;
}

export interface AuthorityServerOptions {
  readonly logger?: Logger;
  readonly bodyLimit?: number;
  /** Bearer token of the admin routes (/v1/admin/…); without it they answer ADMIN_DISABLED. */
  readonly adminToken?: string;
  /** Activation requests per minute allowed per source address and per key (default 60). */
  readonly activationsPerMinute?: number;
  /** Installation IDs per minute a source may send in bulk confirmations, and per key (default 10 000). */
  readonly bulkConfirmationsPerMinute?: number;
  /** Wrong admin tokens allowed per minute from one source address (default 10). */
  readonly adminFailuresPerSourcePerMinute?: number;
  /** Wrong admin tokens per minute from all sources together past which a warning is logged (default 100; never refused). */
  readonly adminFailuresPerMinute?: number;
  readonly clock?: Clock;
  /**
   * Serve HTTPS with this certificate and key (PEM); the CLI reloads them on SIGHUP with
   * `app.server.setSecureContext` (new handshakes only; open connections keep theirs).
   */
  readonly https?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * Addresses or CIDRs of the reverse proxies in front: only from them are X-Forwarded-For
   * and X-Forwarded-Proto believed (request.ip, request.protocol). Default: none.
   */
  readonly trustProxy?: readonly string[];
  /**
   * The built web UI (publisher pages and organisations' portal) served at `/` and `/assets/*`;
   * default packages/authority/web-dist (`npm run build:web`); null serves no UI.
   */
  readonly webRoot?: string | null;
  /** Tests: told of every route as it is registered (the OpenAPI check lists them all). */
  readonly onRoute?: (route: { method: string | string[]; url: string }) => void;
}

/**
 * The authority's HTTP JSON API, versioned under /v1. Errors are `{error: {code, message}}`
 * with the status from the error catalogue. Request bodies are never logged (they carry keys).
 */
export function createAuthorityServer(authority: Authority, options: AuthorityServerOptions = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger | undefined,
    bodyLimit: options.bodyLimit ?? 16 * 1024,
    ...(options.trustProxy && options.trustProxy.length > 0 ? { trustProxy: [...options.trustProxy] } : {}),
    // The https server is still the FastifyInstance callers see (its `server` is a tls.Server then).
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
  }) as unknown as FastifyInstance;
  const onRoute = options.onRoute;
  if (onRoute) app.addHook('onRoute', (route) => onRoute({ method: route.method, url: route.url }));

  // Decisions are audited where they are made; requests refused before any decision are
  // audited here, so the log shows every request (bodies are never logged: they carry keys).
  // RATE_LIMITED is logged, not audited: a flood must not turn into database writes.
  const EARLY_REFUSALS = new Set(['REQUEST_INVALID', 'UNAUTHORIZED', 'ADMIN_DISABLED', 'SCOPE_MISSING']);
  const auditEarly = async (request: { method: string; url: string; ip: string }, code: string, message: string) => {
    await authority
      .auditRefusedRequest(
        `http ${request.method} ${request.url.split('?')[0]}`,
        code,
        `from ${request.ip}: ${message}`,
      )
      .catch((err: unknown) => app.log.error({ err }, 'could not write the audit log'));
  };
  app.setErrorHandler(async (err, request, reply) => {
    const refusal = (code: string, message: string, extra: Record<string, string> = {}): ErrorReply => ({
      error: { code, message, ...extra },
    });
    if (err instanceof AuthorityError && OPERATOR_ONLY_DETAIL[err.code] !== undefined) {
      // The detail (database host, file paths, the driver's text) is for the operator's log,
      // not for whoever sent the request.
      request.log.warn({ code: err.code, err: err.message }, 'store fault');
      if (err.code === 'STORE_UNAVAILABLE') void reply.header('retry-after', String(STORE_RETRY_AFTER_SECONDS));
      return reply.status(err.httpStatus).send(refusal(err.code, OPERATOR_ONLY_DETAIL[err.code] as string));
    }
    if (err instanceof AuthorityError) {
      request.log.info({ code: err.code }, 'refused');
      if (EARLY_REFUSALS.has(err.code)) await auditEarly(request, err.code, err.message);
      if (err.retryAfterSeconds !== undefined) {
        void reply.header('retry-after', String(err.retryAfterSeconds)); // RATE_LIMITED, LOGIN_THROTTLED
      }
      // SCOPE_MISSING names the scope (`scope`), ROOT_ROTATION_OUT_OF_ORDER the next step (`nextStep`).
      return reply.status(err.httpStatus).send(refusal(err.code, err.message, refusalExtras(err)));
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      await auditEarly(request, 'REQUEST_INVALID', (err as Error).message);
      return reply.status(status).send(refusal('REQUEST_INVALID', (err as Error).message));
    }
    request.log.error({ err }, 'internal error');
    return reply.status(500).send(refusal('INTERNAL', 'internal error; see the authority log'));
  });
  app.setNotFoundHandler(async (request, reply) => {
    const message = `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`;
    await auditEarly(request, 'NOT_FOUND', message);
    const notFound: ErrorReply = { error: { code: 'NOT_FOUND', message } };
    return reply.status(404).send(notFound);
  });

  // Reports the database: a node whose database is unreachable is not healthy (a load balancer
  // takes it out), even though its process answers.
  app.get('/v1/health', async (_request, reply) => {
    try {
      await authority.health();
      const healthy: HealthReply = { status: 'ok', name: authority.name, database: 'ok' };
      return healthy;
    } catch (err) {
      if (!(err instanceof AuthorityError)) throw err;
      if (err.code === 'STORE_UNAVAILABLE') void reply.header('retry-after', String(STORE_RETRY_AFTER_SECONDS));
      app.log.warn({ code: err.code, err: err.message }, 'health: store fault');
      const unhealthy: HealthReply = {
        status: 'unavailable',
        name: authority.name,
        database: err.code === 'STORE_UNAVAILABLE' ? 'unreachable' : 'damaged',
        error: { code: err.code, message: OPERATOR_ONLY_DETAIL[err.code] ?? 'see the authority log' },
      };
      return reply.status(err.httpStatus).send(unhealthy);
    }
  });

  const perMinute = options.activationsPerMinute ?? 60;
  const bySource = new RateLimiter(perMinute, options.clock ?? systemClock);
  const byKey = new RateLimiter(perMinute, options.clock ?? systemClock);
  const limit = (limiter: RateLimiter, subject: string, what: string) => {
    const waitMs = limiter.take(subject);
    if (waitMs > 0) {
      throw rateLimited(`more than ${perMinute} activation requests a minute ${what}`, waitMs);
    }
  };

  // The publisher's REST API (api/): its routes, GET /v1/openapi.json, and the /v1/admin/keys/*
  // routes of before. Bearer tokens (the admin token, API tokens) are compared hashed in constant
  // time and wrong ones throttled per source address (api/auth.ts).
  const clock = options.clock ?? systemClock;
  registerApi(
    app,
    authority,
    new ApiAuth(authority, {
      ...(options.adminToken === undefined ? {} : { adminToken: options.adminToken }),
      clock,
      ...(options.adminFailuresPerSourcePerMinute === undefined
        ? {}
        : { failuresPerSourcePerMinute: options.adminFailuresPerSourcePerMinute }),
      ...(options.adminFailuresPerMinute === undefined ? {} : { failuresPerMinute: options.adminFailuresPerMinute }),
    }),
  );

  app.post('/v1/host-activations', async (request, reply) => {
    limit(bySource, request.ip, `from ${request.ip}`);
    const body = parseBody(hostActivationRequestSchema, request.body);
    limit(byKey, keySubject(body.hostKey), 'for this key');
    const result = await authority.activateHost({
      hostKey: body.hostKey,
      hostPublicKey: Buffer.from(body.hostPublicKey, 'base64'),
      hardwareId: body.hardwareId,
    });
    const answer: HostActivationReply = {
      certificate: result.certificate.toString('base64'),
      expiresAt: new Date(result.expiresAt).toISOString(),
      hostKeyId: result.hostKeyId,
      hostsUsed: result.hostsUsed,
      hostLimit: result.hostLimit,
      groups: result.groups.map((g) => ({ id: g.id, name: g.name, kind: g.kind, threshold: g.threshold })),
      trust: await authority.trustRecords(),
    };
    return reply.status(201).send(answer);
  });

  // Online MAK activation: the key and the installation ID in, a confirmation ID out.
  app.post('/v1/activations', async (request, reply) => {
    limit(bySource, request.ip, `from ${request.ip}`);
    const body = parseBody(installationActivationRequestSchema, request.body);
    limit(byKey, keySubject(body.key), 'for this key');
    const result = await authority.activateInstallation({
      key: body.key,
      installationId: body.installationId,
      ...(body.groupId === undefined ? {} : { groupId: body.groupId }),
    });
    const answer: InstallationActivationReply = { ...result, trust: await authority.trustRecords() };
    return reply.status(result.again ? 200 : 201).send(answer);
  });

  // Phone activation (the operator's or an offline web form's call): installation ID in,
  // confirmation ID out. Anonymous like the reference's phone line, rate-limited per address and key.
  app.post('/v1/confirmations', async (request, reply) => {
    limit(bySource, request.ip, `from ${request.ip}`);
    const body = parseBody(confirmationRequestSchema, request.body);
    limit(byKey, iidKeySubject(body.installationId), 'for this key');
    const answer: ConfirmationReply = {
      ...confirmationReply(await authority.confirm(body.installationId)),
      trust: await authority.trustRecords(),
    };
    return reply.status(201).send(answer);
  });

  // Proxy activation (the reference's VAMT): a console sends the IIDs it collected in one
  // call and gets one result per IID, in order; one refused IID never fails the others.
  const bulkPerMinute = options.bulkConfirmationsPerMinute ?? 10_000;
  const bulkBySource = new RateLimiter(bulkPerMinute, options.clock ?? systemClock);
  // And per key, across sources: many consoles (or addresses) cannot each spend a full budget on one key.
  const bulkByKey = new RateLimiter(bulkPerMinute, options.clock ?? systemClock);
  // Its own body limit: 1 000 IIDs of 20 groups (about 140 characters each) with room to spare.
  app.post('/v1/confirmations/bulk', { bodyLimit: 256 * 1024 }, async (request) => {
    const body = parseBody(bulkConfirmationRequestSchema, request.body);
    const waitMs = bulkBySource.take(request.ip, body.installationIds.length);
    if (waitMs > 0) {
      throw rateLimited(`more than ${bulkPerMinute} installation IDs a minute in bulk from ${request.ip}`, waitMs);
    }
    // Each distinct IID is decided once (a repeat in the call gets the same answer) and counts
    // against that IID's own limit, as it would on the single route.
    const distinct = [...new Set(body.installationIds)];
    const answers = new Map<string, BulkConfirmationResult>(
      await Promise.all(
        distinct.map(async (installationId) => {
          try {
            // Each item counts against its key (by the IID's key reference), however it is spelled.
            const keyWait = bulkByKey.take(iidKeySubject(installationId));
            if (keyWait > 0) {
              throw rateLimited(`more than ${bulkPerMinute} installation IDs a minute in bulk for this key`, keyWait);
            }
            const answer: BulkConfirmationResult = {
              installationId,
              ok: true,
              ...confirmationReply(await authority.confirm(installationId)),
            };
            return [installationId, answer] as const;
          } catch (err) {
            if (!(err instanceof AuthorityError)) throw err;
            const message = OPERATOR_ONLY_DETAIL[err.code] ?? err.message;
            if (message !== err.message) request.log.warn({ code: err.code, err: err.message }, 'store fault');
            const refusal: BulkConfirmationResult = { installationId, ok: false, error: { code: err.code, message } };
            return [installationId, refusal] as const;
          }
        }),
      ),
    );
    const results: BulkConfirmationReply = {
      results: body.installationIds.map((installationId) => answers.get(installationId) as BulkConfirmationResult),
      trust: await authority.trustRecords(),
    };
    return results;
  });

  // Revocation (docs/trust.md): public, a list and a status are no secrets; counted per source
  // address like the activation routes, on their own budget (a host's renewal check asks for both).
  const trustBySource = new RateLimiter(perMinute, options.clock ?? systemClock);
  // The trust bundle (docs/trust.md): the roots clients may know, the transition records, the
  // online keys' delegations and the current revocation list; what `client install-trust` reads.
  app.get('/v1/trust', async (request): Promise<TrustReply> => {
    limit(trustBySource, request.ip, `from ${request.ip}`);
    const trust = await authority.trust();
    const list = await authority.revocationList();
    return {
      roots: trust.roots.map((r) => ({
        publicKey: r.publicKey,
        keyId: r.keyId,
        validFrom: r.validFrom,
        ...(r.validUntil === null ? {} : { validUntil: r.validUntil }),
        state: r.state as TrustReply['roots'][number]['state'],
      })),
      transitions: trust.transitions,
      delegations: trust.delegations,
      revocationList: list.encoded.toString('base64'),
    };
  });
  app.get('/v1/revocations', async (request): Promise<RevocationsReply> => {
    limit(trustBySource, request.ip, `from ${request.ip}`);
    const list = await authority.revocationList();
    return { list: list.encoded.toString('base64'), listVersion: list.listVersion };
  });
  app.post('/v1/host-status', async (request): Promise<HostStatusReply> => {
    limit(trustBySource, request.ip, `from ${request.ip}`);
    const body = parseBody(hostStatusRequestSchema, request.body);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body.certificate) || body.certificate.length % 4 !== 0) {
      throw new AuthorityError('HOST_CERTIFICATE_INVALID', 'certificate: expected the host certificate in base64');
    }
    const answer = await authority.hostStatus(Buffer.from(body.certificate, 'base64'));
    return { status: answer.status.toString('base64'), list: answer.list.toString('base64') };
  });

  if (options.webRoot !== null) registerPortalAssets(app, options.webRoot ?? DEFAULT_WEB_ROOT);

  return app;
}
