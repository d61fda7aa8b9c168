import { z } from 'zod';
import { CoreError } from './errors.js';
import { DAY, MINUTE, HOUR } from './clock.js';
import { parseKeyOfType } from './keys.js';
import { isGuid } from './ids.js';
import { decodeDelegation } from './trust/delegation.js';
import { keyIdHex } from './trust/key-id.js';

/**
 * Kinds of product group. The reference's thresholds: 5 for server and application products
 * (Office, Windows Server), 25 for client operating systems.
 */
export const GROUP_KINDS = ['app', 'server', 'client-os'] as const;
export type GroupKind = (typeof GROUP_KINDS)[number];

export const DEFAULT_THRESHOLD: Record<GroupKind, number> = { app: 5, server: 5, 'client-os': 25 };

export interface ProductGroup {
  readonly id: string;
  readonly name: string;
  readonly kind: GroupKind;
  readonly threshold: number;
}

export const GROUP_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

/** Defaults from the reference texts; every one configurable. */
export const KMS_DEFAULTS = {
  port: 1688,
  clientIdWindow: 30 * DAY,
  activationValidity: 180 * DAY,
  renewalInterval: 7 * DAY,
  activationInterval: 2 * HOUR,
  initialGrace: 30 * DAY,
  outOfToleranceGrace: 30 * DAY,
  nonGenuineGrace: 30 * DAY,
  maxClockSkew: 4 * HOUR,
  hostLimit: 6,
  activationsPerHost: 10,
} as const;

/** Bounds a host's interval instructions are clamped to, so a host cannot starve or flood clients. */
export const INTERVAL_BOUNDS = {
  activationInterval: { min: 15 * MINUTE, max: 30 * DAY },
  // Below the 180-day validity, so a renewal always comes before a licence lapses.
  renewalInterval: { min: 15 * MINUTE, max: 30 * DAY },
} as const;

const guid = z.string().refine(isGuid, 'expected a GUID');
const base64Key = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected a base64 Ed25519 public key (32 bytes)');

const trustRootSchema = z
  .object({
    publicKey: base64Key,
    validFrom: z.iso.datetime(),
    validUntil: z.iso.datetime().optional(),
  })
  .strict()
  .refine((r) => r.validUntil === undefined || Date.parse(r.validUntil) > Date.parse(r.validFrom), {
    message: 'validUntil must be after validFrom',
  });

const delegationSchema = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64')
  .refine(
    (text) => {
      try {
        decodeDelegation(Buffer.from(text, 'base64'));
        return true;
      } catch {
        return false;
      }
    },
    { message: 'expected a base64 delegation certificate (126 bytes, version 1)' },
  );

export const productConfigSchema = z
  .object({
    format: z.literal('volact-product-config/1'),
    authority: z
      .object({
        rootPublicKey: base64Key,
        name: z.string().max(200).optional(),
        url: z.string().url().max(500).optional(),
        /** The trust bundle's roots, oldest first (absent: `rootPublicKey` alone, valid from the epoch). */
        roots: z.array(trustRootSchema).min(1).max(8).optional(),
        /** Delegation certificates of the online keys, base64 (each must decode). */
        delegations: z.array(delegationSchema).max(8).optional(),
        /**
         * Key IDs (16 hex digits) of roots that leaked: no transition record ever makes them
         * trusted again (docs/trust.md, A root that leaked). None of `roots` may be one.
         */
        distrustedRoots: z
          .array(z.string().regex(/^[0-9a-f]{16}$/, 'expected a key ID: 16 lowercase hex digits'))
          .max(64)
          .optional(),
      })
      .superRefine((authority, ctx) => {
        const distrusted = new Set(authority.distrustedRoots ?? []);
        const listed = [authority.rootPublicKey, ...(authority.roots ?? []).map((r) => r.publicKey)];
        if (listed.some((k) => distrusted.has(keyIdHex(Buffer.from(k, 'base64')))))
          ctx.addIssue({
            code: 'custom',
            path: ['distrustedRoots'],
            message: 'a distrusted root is also listed as trusted (remove it from roots and rootPublicKey)',
          });
        if (!authority.roots) return;
        if (!authority.roots.some((r) => r.publicKey === authority.rootPublicKey))
          ctx.addIssue({ code: 'custom', path: ['roots'], message: 'rootPublicKey must be one of the roots' });
        const keys = authority.roots.map((r) => r.publicKey);
        if (new Set(keys).size !== keys.length)
          ctx.addIssue({ code: 'custom', path: ['roots'], message: 'a root is listed twice' });
      }),
    group: z.object({
      id: guid,
      name: z.string().regex(GROUP_NAME_RE),
      kind: z.enum(GROUP_KINDS),
      threshold: z.number().int().min(1).max(1_000_000),
    }),
    gvlk: z.string().max(64),
    policy: z.object({
      activationValidityDays: z.number().int().min(1).max(3650),
      initialGraceDays: z.number().int().min(0).max(365),
      outOfToleranceGraceDays: z.number().int().min(0).max(365),
      nonGenuineGraceDays: z.number().int().min(0).max(365),
      maxClockSkewMinutes: z
        .number()
        .int()
        .min(1)
        .max(7 * 24 * 60),
    }),
  })
  .strict();

export type ProductConfig = z.infer<typeof productConfigSchema>;

/** Parses and validates a product configuration (the file an authority exports for a group). */
export function parseProductConfig(value: unknown): ProductConfig {
  const result = productConfigSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || '(top level)';
    throw new CoreError('PRODUCT_CONFIG_INVALID', `product config: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  try {
    parseKeyOfType(result.data.gvlk, 'gvlk');
  } catch (err) {
    throw new CoreError('PRODUCT_CONFIG_INVALID', `product config: gvlk: ${(err as Error).message}`);
  }
  return result.data;
}

export function defaultPolicy(): ProductConfig['policy'] {
  return {
    activationValidityDays: KMS_DEFAULTS.activationValidity / DAY,
    initialGraceDays: KMS_DEFAULTS.initialGrace / DAY,
    outOfToleranceGraceDays: KMS_DEFAULTS.outOfToleranceGrace / DAY,
    nonGenuineGraceDays: KMS_DEFAULTS.nonGenuineGrace / DAY,
    maxClockSkewMinutes: KMS_DEFAULTS.maxClockSkew / MINUTE,
  };
}
