import { z } from 'zod';
import { GROUP_KINDS, GROUP_NAME_RE, MAX_KEY_LIMIT, keyReportSchema } from '@volact/core';
import { ORG_ROLES, PUBLISHER_ROLES } from '../access/principal.js';
import { WEBHOOK_EVENT_TYPES } from '../webhooks/events.js';
import { MAX_CERTIFIED_DAYS } from '../certification.js';
import { ROTATION_STEPS } from '../key-ring-ceremony.js';

/**
 * The publisher's REST API (docs/portal.md "REST API"), declared once: these schemas validate
 * every request (params, query, body: strict objects, bounded) and describe every answer in
 * `GET /v1/openapi.json`. Answers are plain objects (a client drops a field it does not know).
 */

// --- building blocks ------------------------------------------------------------------------

const MAX_GROUPS = 64;
export const isoTime = z.iso.datetime();
const count = z.number().int().min(0).max(MAX_KEY_LIMIT);
const id = (what: string) =>
  z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.:-]+$/, `expected ${what}`);
export const orgId = z.string().regex(/^org_[a-z0-9]{1,40}$/, 'expected an organisation id (org_…)');
const groupName = z.string().regex(GROUP_NAME_RE, 'expected a product group name');
/** A key ID (GUID) or, within an organisation, a key's last five characters. */
const keyRef = id('a key ID or the key’s last five characters');
const keyText = z.string().min(1).max(64);
const text = (max: number) => z.string().max(max);
const name = z.string().min(1).max(200);
const email = z.string().min(3).max(254);
const password = z.string().min(1).max(1024);
const KEY_TYPE_NAMES = ['gvlk', 'kms-host', 'mak', 'retail'] as const;
const MINTABLE = ['kms-host', 'mak', 'retail'] as const;
const ROLES = [...PUBLISHER_ROLES, ...ORG_ROLES] as const;
const booleanText = z.enum(['true', 'false']).transform((v) => v === 'true');
const publicKeyText = z.string().min(1).max(1000);

// --- common query and params ----------------------------------------------------------------

export const pageQueryFields = {
  /** The previous page's `nextCursor`. */
  cursor: z.string().min(1).max(500).optional(),
  /** 1–500, default 100. */
  limit: z.coerce.number().int().min(1).max(500).optional(),
};
export const pageQuery = z.strictObject(pageQueryFields);
export const noQuery = z.strictObject({});
export const orgParams = z.strictObject({ orgId });
export const orgKeyParams = z.strictObject({ orgId, keyId: keyRef });
export const orgKeyRefParams = z.strictObject({ orgId, ref: keyRef });
export const idParams = (what: string) => z.strictObject({ id: id(what) });
export const userParams = z.strictObject({ userId: z.string().min(1).max(254) });
export const tokenParams = z.strictObject({ tokenId: id('a token id (tok_…)') });
export const groupParams = z.strictObject({ group: z.string().min(1).max(64) });
export const orgGroupParams = z.strictObject({ orgId, group: z.string().min(1).max(64) });
/** Bodies of calls that take none: nothing, or `{}`. */
export const emptyBody = z.strictObject({}).optional();

// --- answers ---------------------------------------------------------------------------------

export const errorAnswer = z.object({
  error: z.object({
    code: z.string().max(64),
    message: z.string().max(2000),
    /** SCOPE_MISSING: the scope the call needs. */
    scope: z.string().max(200).optional(),
    /** ROOT_ROTATION_OUT_OF_ORDER: the step to run next. */
    nextStep: z.string().max(20).optional(),
  }),
});

const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item).max(500), nextCursor: z.string().max(500).nullable() });
const list = <T extends z.ZodType>(item: T, max = 100_000) =>
  z.object({ items: z.array(item).max(max), nextCursor: z.string().max(500).nullable() });

export const contact = z.strictObject({
  name,
  email: email.optional(),
  phone: z.string().min(1).max(50).optional(),
});
export const organisation = z.object({
  id: orgId,
  name,
  externalRef: text(200).nullable(),
  contacts: z.array(contact).max(20),
  createdAt: isoTime,
  keyCount: count,
});
export const user = z.object({
  id: z.string().max(64),
  email,
  name,
  role: z.enum(ROLES),
  orgId: orgId.nullable(),
  createdAt: isoTime,
  disabledAt: isoTime.nullable(),
  lastSignInAt: isoTime.nullable(),
});
export const principal = z.object({
  kind: z.enum(['user', 'token', 'admin-token']),
  name: z.string().max(300),
  orgId: orgId.nullable(),
  role: z.enum(ROLES).nullable(),
  scopes: z.array(z.string().max(100)).max(50),
});
export const tokenInfo = z.object({
  id: z.string().max(64),
  name: z.string().max(100),
  last5: z.string().max(8),
  scopes: z.array(z.string().max(100)).max(50),
  createdBy: z.string().max(64).nullable(),
  orgId: orgId.nullable(),
  createdAt: isoTime,
  lastUsedAt: isoTime.nullable(),
  expiresAt: isoTime.nullable(),
  revokedAt: isoTime.nullable(),
});
export const productGroup = z.object({
  id: z.string().max(36),
  name: groupName,
  kind: z.enum(GROUP_KINDS),
  threshold: z.number().int().min(1).max(1_000_000),
});
export const keySummary = z.object({
  keyId: z.string().max(64),
  orgId,
  type: z.enum(KEY_TYPE_NAMES),
  groups: z.array(groupName).max(MAX_GROUPS),
  last5: z.string().max(8),
  limit: count,
  used: count,
  remaining: count,
  activationsPerHost: count.nullable(),
  createdAt: isoTime,
  revokedAt: isoTime.nullable(),
  note: text(500).nullable(),
  recoverable: z.boolean(),
});
export const mintedKey = z.object({
  /** The key: in this answer once (kept sealed; an org-admin may reveal it with a password). */
  key: z.string().max(64),
  keyId: z.string().max(64),
  orgId,
  type: z.enum(KEY_TYPE_NAMES),
  groups: z.array(groupName).max(MAX_GROUPS),
  limit: count,
  hosts: count.nullable(),
  activationsPerHost: count.nullable(),
});
export const keyReport = keyReportSchema;
export const installation = z.object({
  installationId: z.string().max(400),
  channel: z.string().max(16),
  activationCount: count,
  firstActivatedAt: isoTime,
  lastActivatedAt: isoTime,
});
export const host = z.object({
  hardwareId: z.string().max(128),
  activationCount: count,
  firstActivatedAt: isoTime,
  lastActivatedAt: isoTime,
  certificateSerial: z.string().max(64),
  certificateExpiresAt: isoTime,
});
export const makUsage = z.object({
  keyId: z.string().max(64),
  last5: z.string().max(8),
  type: z.enum(KEY_TYPE_NAMES),
  groups: z.array(groupName).max(MAX_GROUPS),
  limit: count,
  used: count,
  remaining: count,
  percent: z.number().int().min(0),
  revokedAt: isoTime.nullable(),
});
export const usagePoint = z.object({ day: z.string().max(10), activations: count });
export const auditRow = z.object({
  id: z.string().max(64),
  at: isoTime,
  action: z.string().max(200),
  result: z.string().max(64),
  actor: z.string().max(300).nullable(),
  orgId: z.string().max(64).nullable(),
  keyId: z.string().max(64).nullable(),
  keyLast5: z.string().max(8).nullable(),
  detail: z.string().max(2000).nullable(),
});
export const ARTEFACT_KINDS = ['activation-object', 'oem-certificate', 'token-ca'] as const;
export const artefact = z.object({
  id: z.string().max(64),
  orgId,
  kind: z.enum(ARTEFACT_KINDS),
  name: z.string().max(300),
  groups: z.array(groupName).max(MAX_GROUPS),
  subjectKeyId: z.string().max(64).nullable(),
  createdAt: isoTime,
  expiresAt: isoTime.nullable(),
  /** The signed document as issued (the JSON the CLI writes). */
  document: z.unknown(),
});
export const confirmation = z.object({
  kind: z.enum(['installation', 'kms-host', 'activation-object']),
  confirmationId: z.string().max(200),
});
export const RAISE_STATES = ['pending', 'approved', 'declined'] as const;
export const raiseRequest = z.object({
  id: z.string().max(64),
  orgId,
  keyId: z.string().max(64),
  keyLast5: z.string().max(8),
  additional: count,
  reason: z.string().max(500),
  state: z.enum(RAISE_STATES),
  requestedBy: z.string().max(300),
  requestedAt: isoTime,
  decidedBy: z.string().max(300).nullable(),
  decidedAt: isoTime.nullable(),
  decisionReason: z.string().max(500).nullable(),
  limitBefore: count.nullable(),
  limitAfter: count.nullable(),
});
export const webhookEndpoint = z.object({
  id: z.string().max(64),
  orgId: orgId.nullable(),
  url: z.string().max(2000),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).max(20),
  secretLast5: z.string().max(8),
  createdAt: isoTime,
  disabledAt: isoTime.nullable(),
});
export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;
export const webhookDelivery = z.object({
  id: z.string().max(64),
  endpointId: z.string().max(64),
  eventId: z.string().max(64),
  eventType: z.enum(WEBHOOK_EVENT_TYPES),
  state: z.enum(DELIVERY_STATES),
  attempts: z.number().int().min(0),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().max(2000).nullable(),
  nextAttemptAt: isoTime.nullable(),
  deliveredAt: isoTime.nullable(),
  createdAt: isoTime,
});
const revocationKind = z.enum(['host', 'manufacturer', 'tokenCa']);
export const revocationResult = z.object({
  kind: revocationKind,
  subjects: z
    .array(
      z.object({
        subject: z.string().max(64),
        hostKeyId: z.string().max(64).optional(),
        hostRecord: z.string().max(64).optional(),
        alreadyRevoked: z.boolean(),
      }),
    )
    .max(100_000),
  alreadyRevoked: z.boolean(),
  listVersion: z.number().int(),
  issuedAt: isoTime,
  nextUpdate: isoTime,
  kmsHostKey: z
    .object({ keyId: z.string().max(64), keyRevoked: z.boolean(), stopNewActivations: z.string().nullable() })
    .optional(),
});
export const revocationReport = z.object({
  listVersion: z.number().int(),
  issuedAt: isoTime,
  nextUpdate: isoTime,
  issuerKeyId: z.string().max(16),
  entries: z
    .array(
      z.object({
        kind: revocationKind,
        subject: z.string().max(64),
        revokedAt: isoTime,
        reason: z.string().nullable(),
      }),
    )
    .max(65_536),
  /** The signed list, base64 (what `authority revocations --out` writes). */
  list: z.string().max(2_200_000),
});
const rootView = z.object({
  ordinal: z.number().int(),
  keyId: z.string().max(16),
  publicKey: z.string().max(64),
  state: z.string().max(20),
  validFrom: isoTime,
  validUntil: isoTime.nullable(),
  signer: z.string().max(1000),
  heldHere: z.boolean(),
  where: z.string().max(1000),
});
const onlineKeyView = z.object({
  sequence: z.number().int(),
  keyId: z.string().max(16),
  state: z.string().max(20),
  issuerKeyId: z.string().max(16),
  keyIndex: z.number().int().min(1).max(3),
  validFrom: isoTime,
  validUntil: isoTime,
  purposes: z.array(z.string().max(40)).max(8),
});
export const rootStatus = z.object({
  roots: z.array(rootView).max(64),
  onlineKeys: z.array(onlineKeyView).max(64),
  rotation: z.object({ lastStep: z.enum(ROTATION_STEPS).nullable(), nextStep: z.enum(ROTATION_STEPS) }),
});
export const rotationResult = z.object({
  step: z.enum(ROTATION_STEPS),
  done: z.boolean(),
  message: z.string().max(2000),
  nextStep: z.enum(ROTATION_STEPS),
  root: rootView,
  status: rootStatus,
});
export const onlineKeyRotation = z.object({
  onlineKey: onlineKeyView,
  previous: onlineKeyView.nullable(),
  status: rootStatus,
});
/** A product configuration (core's productConfigSchema; the file a product ships). */
export const productConfig = z.record(z.string(), z.unknown());

// --- requests and their answers, route by route -----------------------------------------------

export const signInBody = z.strictObject({ email, password });
export const signInAnswer = z.object({ user, expiresAt: isoTime });
export const whoAmIAnswer = z.object({ user: user.nullable(), principal });
export const signedOutAnswer = z.object({ signedOut: z.literal(true) });

export const orgListQuery = z.strictObject({ ...pageQueryFields, q: z.string().max(200).optional() });
export const orgCreateBody = z.strictObject({
  name,
  externalRef: text(200).nullable().optional(),
  contacts: z.array(contact).max(20).optional(),
});
export const orgPatchBody = orgCreateBody.partial();
export const orgPage = page(organisation);

export const usersQuery = z.strictObject({ ...pageQueryFields, orgId: orgId.optional() });
export const userCreateBody = z.strictObject({
  email,
  name,
  role: z.enum(ROLES),
  orgId: orgId.nullable().optional(),
  password,
});
export const userPatchBody = z.strictObject({
  name: name.optional(),
  role: z.enum(ROLES).optional(),
  disabled: z.boolean().optional(),
  password: password.optional(),
});
export const userPage = page(user);
export const removedAnswer = z.object({ removed: z.literal(true), id: z.string().max(254) });

export const tokensQuery = usersQuery;
export const tokenCreateBody = z.strictObject({
  name: z.string().min(1).max(100),
  scopes: z.array(z.string().min(1).max(100)).min(1).max(50),
  /** ISO time (or ms since the epoch) after which the token is refused. */
  expiresAt: z.union([isoTime, z.number().int().min(0).max(8.64e15)]).optional(),
});
export const tokenCreated = z.object({
  /** The token: in this answer once, stored hashed. */
  token: z.string().max(200),
  info: tokenInfo,
});
export const tokenPage = page(tokenInfo);

export const groupCreateBody = z.strictObject({
  name: groupName,
  kind: z.enum(GROUP_KINDS).optional(),
  threshold: z.number().int().min(1).max(1_000_000).optional(),
});
export const groupList = list(productGroup, 10_000);
export const productConfigQuery = z.strictObject({ url: z.string().url().max(2000).optional() });

const keyFilterFields = {
  ...pageQueryFields,
  type: z.enum(KEY_TYPE_NAMES).optional(),
  group: z.string().min(1).max(64).optional(),
  revoked: booleanText.optional(),
  q: z.string().min(1).max(100).optional(),
};
export const keysQuery = z.strictObject({ ...keyFilterFields, orgId: orgId.optional() });
export const orgKeysQuery = z.strictObject(keyFilterFields);
export const keyPage = page(keySummary);
export const keyLookupBody = z.strictObject({ key: keyText });
export const mintBody = z.strictObject({
  type: z.enum(MINTABLE),
  groups: z.array(groupName).min(1).max(MAX_GROUPS),
  limit: z.number().int().min(1).max(MAX_KEY_LIMIT).optional(),
  hosts: z.number().int().min(1).max(MAX_KEY_LIMIT).optional(),
  activationsPerHost: z.number().int().min(1).max(MAX_KEY_LIMIT).optional(),
  note: text(500).optional(),
});
export const installationPage = page(installation);
export const hostPage = page(host);
export const noteBody = z.strictObject({ note: text(500).nullable() });
export const limitBody = z.strictObject({ limit: z.number().int().min(0).max(MAX_KEY_LIMIT) });
export const revokeBody = z.strictObject({ reason: z.string().min(1).max(200).optional() }).optional();
export const revealBody = z.strictObject({ password });
export const revealAnswer = z.object({ key: z.string().max(64) });
export const usageList = list(makUsage);
export const usageHistoryQuery = z.strictObject({
  keyId: keyRef.optional(),
  days: z.coerce.number().int().min(1).max(366).optional(),
});
export const usageHistoryList = list(usagePoint, 366);
export const productConfigList = list(z.object({ group: groupName, kind: z.enum(GROUP_KINDS) }), 10_000);

export const auditQuery = z.strictObject({
  ...pageQueryFields,
  orgId: orgId.optional(),
  keyId: keyRef.optional(),
  actor: z.string().min(1).max(300).optional(),
  action: z.string().min(1).max(100).optional(),
  from: isoTime.optional(),
  to: isoTime.optional(),
});
export const auditPage = page(auditRow);
export const artefactPage = page(artefact);
export const activationObjectBody = z.strictObject({
  group: groupName,
  domain: z.string().min(1).max(253),
  name: z.string().min(1).max(200),
  validityDays: z.number().int().min(1).max(MAX_CERTIFIED_DAYS).optional(),
});
export const oemCertificateBody = z.strictObject({
  manufacturer: z.string().min(1).max(200),
  /** An Ed25519 public key: SPKI PEM, or its 32 raw bytes in base64. */
  publicKey: publicKeyText,
  groups: z.array(groupName).min(1).max(MAX_GROUPS),
  days: z.number().int().min(1).max(MAX_CERTIFIED_DAYS),
});
export const tokenCaBody = z.strictObject({
  organisation: z.string().min(1).max(200),
  group: groupName,
  publicKey: publicKeyText,
  days: z.number().int().min(1).max(MAX_CERTIFIED_DAYS),
});
export const operatorConfirmationBody = z.strictObject({ installationId: z.string().min(1).max(400) });

export const raiseRequestsQuery = z.strictObject({
  ...pageQueryFields,
  orgId: orgId.optional(),
  state: z.enum(RAISE_STATES).optional(),
});
export const raiseRequestBody = z.strictObject({
  keyId: keyRef,
  additional: z.number().int().min(1).max(1_000_000),
  reason: z.string().min(1).max(500),
});
export const decisionBody = z.strictObject({
  decision: z.enum(['approve', 'decline']),
  reason: z.string().max(500),
});
export const raiseRequestPage = page(raiseRequest);

export const webhooksQuery = z.strictObject({ ...pageQueryFields, orgId: orgId.optional() });
export const webhookCreateBody = z.strictObject({
  orgId: orgId.nullable().optional(),
  url: z.string().min(1).max(2000),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length),
});
export const webhookCreated = z.object({
  endpoint: webhookEndpoint,
  /** The signing secret: in this answer once. */
  secret: z.string().max(200),
});
export const webhookPage = page(webhookEndpoint);
export const deliveriesQuery = z.strictObject({ ...pageQueryFields, state: z.enum(DELIVERY_STATES).optional() });
export const deliveryPage = page(webhookDelivery);

export const revokeHostBody = z.strictObject({
  subject: z.string().min(1).max(100),
  reason: z.string().min(1).max(200).optional(),
  alsoRevokeKey: z.boolean().optional(),
});
export const revokeKeyIdBody = z.strictObject({
  keyId: z.string().min(1).max(64),
  reason: z.string().min(1).max(200).optional(),
});
export const rotateRootBody = z.strictObject({ step: z.enum(ROTATION_STEPS) });
