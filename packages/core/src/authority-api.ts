import { z } from 'zod';
import { MAX_CERT_GROUPS } from './certificate.js';
import { isGuid } from './ids.js';
import { KEY_TYPES, type KeyType } from './keys.js';
import { GROUP_KINDS, GROUP_NAME_RE } from './products.js';

/**
 * The authority's HTTP API (/v1), declared once: the authority validates requests with these
 * schemas and types its replies with them; its clients (a KMS host, the client SDK, the
 * console) validate the replies with the same ones. Every string and array is bounded and
 * every known field typed, so a reply that is not the authority's (a proxy's page, a hostile
 * or broken server) is refused with the field named instead of being half-read.
 *
 * Requests are strict: the authority refuses a field it does not know (REQUEST_INVALID), so a
 * client never believes the authority honoured an option it ignored. Replies are not: a client
 * drops a field it does not know (zod's default), so the authority may add a field to a /v1
 * reply without stopping every product already shipped. Nothing is lost by it: what grants a
 * licence (a confirmation ID, a host certificate) is verified against the pinned root key, not
 * believed because the reply's shape was right. The authority's own tests check that what it
 * sends is exactly what these schemas declare (http-replies.test.ts: parsing drops nothing).
 */

/** The authority takes at most this many installation IDs in one bulk confirmation. */
export const MAX_BULK_CONFIRMATIONS = 1000;
/**
 * The most activations a key report can list: a key's limit is at most this, and it never has
 * more activations than its limit.
 */
export const MAX_KEY_LIMIT = 10_000_000;

// Texts as a person types them (dashes, spaces): generous bounds, parsed by the receiver.
const keyText = z.string().max(64);
const installationIdText = z.string().max(400);
const confirmationIdText = z.string().max(200);
const guid = z.string().max(36).refine(isGuid, 'expected a GUID');
const groupName = z.string().regex(GROUP_NAME_RE, 'expected a product group name');
const isoTime = z.iso.datetime();
const count = z.number().int().min(0).max(MAX_KEY_LIMIT);

// --- requests -------------------------------------------------------------------------------

/** POST /v1/host-activations: a KMS host asks for its certificate. */
export const hostActivationRequestSchema = z
  .object({
    hostKey: keyText,
    hostPublicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key (32 bytes)'),
    hardwareId: z.string().max(128),
  })
  .strict();

/** POST /v1/activations: an installation's MAK or retail key, online. */
export const installationActivationRequestSchema = z
  .object({ key: keyText, installationId: installationIdText, groupId: z.string().max(64).optional() })
  .strict();

/** POST /v1/confirmations: an installation ID read out by phone. */
export const confirmationRequestSchema = z.object({ installationId: installationIdText }).strict();

/** POST /v1/confirmations/bulk: a console's proxy activation. */
export const bulkConfirmationRequestSchema = z
  .object({ installationIds: z.array(installationIdText).min(1).max(MAX_BULK_CONFIRMATIONS) })
  .strict();

/** POST /v1/admin/keys/show and /v1/admin/keys/revoke. */
export const adminKeyRequestSchema = z.object({ key: keyText }).strict();
/** POST /v1/admin/keys/limit (the range is the authority's to check, with its own message). */
export const adminKeyLimitRequestSchema = z.object({ key: keyText, limit: z.number().int() }).strict();

// --- replies --------------------------------------------------------------------------------
// Plain z.object, never .strict(): a client drops the fields it does not know (a later /v1
// authority's additions) and checks the type and bounds of every one it does.

/** Every refusal: the code of the error catalogue and a message for a person. */
export const errorReplySchema = z.object({
  error: z.object({
    code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'expected an error code'),
    message: z.string().max(2000),
  }),
});

/** GET /v1/health: a node whose database is gone answers 503/500 with the second form. */
export const healthReplySchema = z.union([
  z.object({ status: z.literal('ok'), name: z.string().max(200), database: z.literal('ok') }),
  z.object({
    status: z.literal('unavailable'),
    name: z.string().max(200),
    database: z.enum(['unreachable', 'damaged']),
    error: errorReplySchema.shape.error,
  }),
]);

const productGroupSchema = z.object({
  id: guid,
  name: groupName,
  kind: z.enum(GROUP_KINDS),
  threshold: z.number().int().min(1).max(1_000_000),
});

const trustRecordText = z
  .string()
  .max(400)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

/**
 * The trust records an online answer carries, so online clients learn them (docs/trust.md):
 * root-transition records and online keys' delegation certificates, base64, at most 8 of each.
 * Optional: an authority of an earlier release sends none.
 */
export const trustRecordsSchema = z.object({
  transitions: z.array(trustRecordText).max(8),
  delegations: z.array(trustRecordText).max(8),
});

/** 201 to POST /v1/host-activations. */
export const hostActivationReplySchema = z.object({
  /** The host certificate, base64 (at most 64 groups: about 1.6 KB). */
  certificate: z
    .string()
    .max(4096)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
  expiresAt: isoTime,
  hostKeyId: guid,
  hostsUsed: count,
  hostLimit: count,
  groups: z.array(productGroupSchema).min(1).max(MAX_CERT_GROUPS),
  trust: trustRecordsSchema.optional(),
});

const installationActivationFields = {
  confirmationId: confirmationIdText,
  method: z.enum(['mak', 'retail']),
  group: groupName,
  used: count,
  limit: count,
  /** true when this installation had been activated before (nothing was used). */
  again: z.boolean(),
  trust: trustRecordsSchema.optional(),
};

/** 201 (a new installation) or 200 (the same again) to POST /v1/activations. */
export const installationActivationReplySchema = z.object(installationActivationFields);

const installationConfirmation = z.object({ kind: z.literal('installation'), ...installationActivationFields });
const kmsHostConfirmation = z.object({
  kind: z.literal('kms-host'),
  confirmationId: confirmationIdText,
  groups: z.array(groupName).min(1).max(MAX_CERT_GROUPS),
  hostsUsed: count,
  hostLimit: count,
  expiresAt: isoTime,
  trust: trustRecordsSchema.optional(),
});
/** A disconnected forest's activation object, confirmed by phone with its KMS host key. */
const activationObjectConfirmation = z.object({
  kind: z.literal('activation-object'),
  confirmationId: confirmationIdText,
  group: groupName,
  hostsUsed: count,
  hostLimit: count,
  trust: trustRecordsSchema.optional(),
});

/** 201 to POST /v1/confirmations: one of three kinds, by the installation ID's kind. */
export const confirmationReplySchema = z.discriminatedUnion('kind', [
  installationConfirmation,
  kmsHostConfirmation,
  activationObjectConfirmation,
]);

const bulkAnswered = { installationId: installationIdText, ok: z.literal(true) };
/** One IID's result in a bulk reply: its confirmation, or its own refusal. */
export const bulkConfirmationResultSchema = z.union([
  installationConfirmation.extend(bulkAnswered),
  kmsHostConfirmation.extend(bulkAnswered),
  activationObjectConfirmation.extend(bulkAnswered),
  z.object({ installationId: installationIdText, ok: z.literal(false), error: errorReplySchema.shape.error }),
]);

/** 200 to POST /v1/confirmations/bulk: one result per IID sent, in order. */
export const bulkConfirmationReplySchema = z.object({
  results: z.array(bulkConfirmationResultSchema).max(MAX_BULK_CONFIRMATIONS),
  /** Once for the whole reply (not in each result). */
  trust: trustRecordsSchema.optional(),
});

const hostActivationEntry = z.object({
  hardwareId: z.string().max(128),
  activationCount: count,
  firstActivatedAt: isoTime,
  lastActivatedAt: isoTime,
  certificateSerial: z.string().max(64),
  certificateExpiresAt: isoTime,
});
const installationEntry = z.object({
  installationId: installationIdText,
  /** online or phone. */
  channel: z.string().max(16),
  activationCount: count,
  firstActivatedAt: isoTime,
  lastActivatedAt: isoTime,
});

/** 200 to the admin key routes: what a key may do and has done; never the key itself. */
export const keyReportSchema = z.object({
  /** The key's last five characters, after an ellipsis (`…7QX2M`). */
  key: z.string().max(8),
  keyId: guid,
  type: z.enum(Object.keys(KEY_TYPES) as [KeyType, ...KeyType[]]),
  group: z.string().max(63),
  groups: z.array(groupName).max(MAX_CERT_GROUPS),
  limit: count,
  used: count,
  remaining: count,
  activationsPerHost: count.nullable(),
  revokedAt: isoTime.nullable(),
  activations: z.array(z.union([hostActivationEntry, installationEntry])).max(MAX_KEY_LIMIT),
});

/** A revocation list as base64: at most 65 536 entries of 25 bytes (about 2.2 MB of text). */
const revocationListBase64 = z
  .string()
  .max(2_200_000)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

/** POST /v1/host-status: a KMS host's certificate (base64), checked by the authority (HOST_CERTIFICATE_*). */
export const hostStatusRequestSchema = z.object({ certificate: z.string().max(4096) }).strict();

/** 200 to GET /v1/revocations: the current signed revocation list. */
export const revocationsReplySchema = z.object({
  list: revocationListBase64,
  listVersion: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
});

/** 200 to POST /v1/host-status: the host's status (113 bytes) and the list it names, base64. */
export const hostStatusReplySchema = z.object({
  status: z
    .string()
    .max(200)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64'),
  list: revocationListBase64,
});

/** 200 to GET /v1/trust: the roots clients may know, the trust records and the current revocation list. */
export const trustReplySchema = z.object({
  roots: z
    .array(
      z.object({
        publicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key (32 bytes)'),
        keyId: z.string().regex(/^[0-9a-f]{16}$/, 'expected a key ID (16 hex digits)'),
        validFrom: isoTime,
        validUntil: isoTime.optional(),
        state: z.enum(['published', 'current', 'previous', 'retired']),
      }),
    )
    .min(1)
    .max(16),
  transitions: z.array(trustRecordText).max(8),
  delegations: z.array(trustRecordText).max(8),
  revocationList: revocationListBase64.optional(),
});

export type HostActivationRequestBody = z.infer<typeof hostActivationRequestSchema>;
export type InstallationActivationRequestBody = z.infer<typeof installationActivationRequestSchema>;
export type ErrorReply = z.infer<typeof errorReplySchema>;
export type HealthReply = z.infer<typeof healthReplySchema>;
export type HostActivationReply = z.infer<typeof hostActivationReplySchema>;
export type InstallationActivationReply = z.infer<typeof installationActivationReplySchema>;
export type ConfirmationReply = z.infer<typeof confirmationReplySchema>;
export type BulkConfirmationResult = z.infer<typeof bulkConfirmationResultSchema>;
export type BulkConfirmationReply = z.infer<typeof bulkConfirmationReplySchema>;
export type KeyReportReply = z.infer<typeof keyReportSchema>;
export type RevocationsReply = z.infer<typeof revocationsReplySchema>;
export type HostStatusReply = z.infer<typeof hostStatusReplySchema>;
export type TrustRecordsReply = z.infer<typeof trustRecordsSchema>;
export type TrustReply = z.infer<typeof trustReplySchema>;

/**
 * Validates a reply an authority sent: the data, or the first field that is wrong, named
 * (`groups.0.name: expected a product group name`) for the caller's own error.
 */
export function readAuthorityReply<T>(
  schema: z.ZodType<T>,
  body: unknown,
): { ok: true; value: T } | { ok: false; problem: string } {
  const parsed = schema.safeParse(body);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue?.path.join('.') || 'body';
  return { ok: false, problem: `${where.slice(0, 100)}: ${(issue?.message ?? 'invalid').slice(0, 200)}` };
}
