import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Authority } from './authority.js';
import { AuthorityError } from './errors.js';

const hostActivationBody = z
  .object({
    hostKey: z.string().max(64),
    hostPublicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key (32 bytes)'),
    hardwareId: z.string().max(128),
  })
  .strict();

export interface AuthorityServerOptions {
  readonly logger?: Logger;
  readonly bodyLimit?: number;
}

/**
 * The authority's HTTP JSON API, versioned under /v1. Errors are `{error: {code, message}}`
 * with the status from the error catalogue. Request bodies are never logged (they carry keys).
 */
export function createAuthorityServer(authority: Authority, options: AuthorityServerOptions = {}): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger | undefined,
    bodyLimit: options.bodyLimit ?? 16 * 1024,
  });

  app.setErrorHandler((err, request, reply) => {
    if (err instanceof AuthorityError) {
      request.log.info({ code: err.code }, 'refused');
      return reply.status(err.httpStatus).send({ error: { code: err.code, message: err.message } });
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.status(status).send({ error: { code: 'REQUEST_INVALID', message: (err as Error).message } });
    }
    request.log.error({ err }, 'internal error');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error; see the authority log' } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }),
  );

  app.get('/v1/health', async () => ({ status: 'ok', name: authority.name }));

  app.post('/v1/host-activations', async (request, reply) => {
    const parsed = hostActivationBody.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AuthorityError('REQUEST_INVALID', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const result = await authority.activateHost({
      hostKey: parsed.data.hostKey,
      hostPublicKey: Buffer.from(parsed.data.hostPublicKey, 'base64'),
      hardwareId: parsed.data.hardwareId,
    });
    return reply.status(201).send({
      certificate: result.certificate.toString('base64'),
      expiresAt: new Date(result.expiresAt).toISOString(),
      hostKeyId: result.hostKeyId,
      hostsUsed: result.hostsUsed,
      hostLimit: result.hostLimit,
      groups: result.groups.map((g) => ({ id: g.id, name: g.name, kind: g.kind, threshold: g.threshold })),
    });
  });

  app.get<{ Params: { group: string } }>('/v1/groups/:group/product-config', async (request) =>
    authority.productConfig(request.params.group),
  );

  return app;
}
