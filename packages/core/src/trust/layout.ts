/**
 * The trust records' byte layouts, declared once (as wire/layout.ts declares the KMS wire's):
 * the codecs take their offsets from these tables, and docs/protocol.md's "Trust records" field
 * tables are rendered from them (`npm run docs:vectors`, checked by a test). Integers are
 * unsigned big-endian; times are ms since the Unix epoch.
 */
import { defineLayout, type Layout } from '../wire/layout.js';

/** The offsets of a layout's fixed fields, by name. */
export function offsetsOf<N extends string>(layout: Layout<N>): Readonly<Record<N, number>> {
  const out = {} as Record<N, number>;
  for (const f of layout.fields) out[f.name as N] = f.offset;
  return out;
}

const KEY_ID = 'bytes(8)';
const SIGNATURE = 'bytes(64)';

export const ROOT_TRANSITION_LAYOUT = defineLayout('root-transition', [
  { name: 'version', type: 'u8', description: '1' },
  { name: 'previousKeyId', type: KEY_ID, description: 'key ID of the current root (the one clients already trust)' },
  { name: 'nextPublicKey', type: 'bytes(32)', description: 'raw Ed25519 public key of the next root' },
  { name: 'issuedAt', type: 'u64', unit: 'ms', description: 'when the record was made' },
  {
    name: 'nextValidFrom',
    type: 'u64',
    unit: 'ms',
    description: 'from when evidence signed by the next root is accepted',
  },
  {
    name: 'sigPrevious',
    type: SIGNATURE,
    description: 'Ed25519 by the previous root over `"volact/root-transition/v1\\0" ‖ bytes 0..57`',
  },
  {
    name: 'sigNext',
    type: SIGNATURE,
    description: 'Ed25519 by the next root over the same bytes (proof it holds the key)',
  },
]);

export const DELEGATION_LAYOUT = defineLayout('delegation', [
  { name: 'version', type: 'u8', description: '1' },
  { name: 'issuerKeyId', type: KEY_ID, description: 'key ID of the root that delegates' },
  { name: 'delegatePublicKey', type: 'bytes(32)', description: 'raw Ed25519 public key of the online key' },
  { name: 'sequence', type: 'u32', description: "the online key's number; CID key index = sequence mod 3 + 1" },
  {
    name: 'validFrom',
    type: 'u64',
    unit: 'ms',
    description: 'start of the validity (inclusive); the root must be valid then',
  },
  { name: 'validUntil', type: 'u64', unit: 'ms', description: 'end of the validity (inclusive), after validFrom' },
  {
    name: 'purposes',
    type: 'u8',
    description:
      'bits: 1 confirmation IDs (online and phone), 2 phone host certificates, 4 phone activation objects; others 0, not all 0',
  },
  {
    name: 'signature',
    type: SIGNATURE,
    description: 'Ed25519 by the root over `"volact/delegation/v1\\0" ‖ bytes 0..62`',
  },
]);

export const REVOCATION_LIST_LAYOUT = defineLayout(
  'revocation-list',
  [
    { name: 'version', type: 'u8', description: '1' },
    { name: 'issuerKeyId', type: KEY_ID, description: 'key ID of the root that signs the list' },
    {
      name: 'listVersion',
      type: 'u64',
      description: 'grows with every list; an older list than the one held is refused',
    },
    { name: 'issuedAt', type: 'u64', unit: 'ms', description: 'when the list was made' },
    { name: 'nextUpdate', type: 'u64', unit: 'ms', description: 'issuedAt + 7 days: hosts fetch a new list before' },
    { name: 'count', type: 'u32', description: 'number of entries, at most 65536' },
  ],
  [
    {
      offset: '37',
      name: 'entries',
      size: '25·count',
      description: 'the entries (table below), sorted by (kind, subject), no two equal',
    },
    {
      offset: '..',
      name: 'signature',
      size: '64',
      description: 'Ed25519 by the root over `"volact/revocations/v1\\0" ‖ every byte before`',
    },
  ],
);

export const REVOCATION_ENTRY_LAYOUT = defineLayout('revocation-entry', [
  { name: 'kind', type: 'u8', description: '1 host key, 2 OEM manufacturer, 3 token CA' },
  {
    name: 'subject',
    type: 'bytes(16)',
    description: 'host key: SHA-256(host public key), first 16 bytes; manufacturer, token CA: key ID and 8 zero bytes',
  },
  { name: 'revokedAt', type: 'u64', unit: 'ms', description: 'when it was revoked' },
]);

export const HOST_STATUS_LAYOUT = defineLayout('host-status', [
  { name: 'version', type: 'u8', description: '1' },
  { name: 'issuerKeyId', type: KEY_ID, description: 'key ID of the root that signs the status' },
  { name: 'hostKeyRef', type: 'bytes(16)', description: 'SHA-256(host public key), first 16 bytes' },
  { name: 'listVersion', type: 'u64', description: 'the revocation list that does not name the host key' },
  { name: 'issuedAt', type: 'u64', unit: 'ms', description: 'when the status was made' },
  {
    name: 'nextUpdate',
    type: 'u64',
    unit: 'ms',
    description: "the list's nextUpdate: the status is not accepted after",
  },
  {
    name: 'signature',
    type: SIGNATURE,
    description: 'Ed25519 by the root over `"volact/host-status/v1\\0" ‖ bytes 0..49`',
  },
]);

export const TRUST_LAYOUTS: readonly Layout[] = [
  ROOT_TRANSITION_LAYOUT,
  DELEGATION_LAYOUT,
  REVOCATION_LIST_LAYOUT,
  REVOCATION_ENTRY_LAYOUT,
  HOST_STATUS_LAYOUT,
];
