import { createHash, createHmac } from 'node:crypto';
import { CoreError } from './errors.js';
import { DAY } from './clock.js';
import { guidToBytes } from './ids.js';
import type { ProductKey } from './keys.js';
import { secretsEqual, sha256 } from './crypto.js';
import {
  bigIntToBytes,
  bytesToBigInt,
  decodeDigitGroups,
  encodeDigitGroups,
  DATA_DIGITS_PER_GROUP,
} from './digit-groups.js';
import {
  SHORT_SIGNATURE_RANGE,
  shortSignatureFromBigInt,
  shortSignatureToBigInt,
  shortSign,
  shortSignV2,
  shortVerify,
  shortVerifyV2,
  type ShortSignature,
  type ShortSigningKey,
} from './short-signature.js';
import { INSTALLATION_ID_LAYOUT, type Field } from './wire/layout.js';

/**
 * Installation ID (IID): what a machine reads out to activate by phone, and sends online.
 * Binary (declared in wire/layout.ts, INSTALLATION_ID_LAYOUT), then rendered as digit groups
 * (digit-groups.ts). `key` is the key's canonical text, dashes included; the hardware id and
 * the domain are hashed as UTF-8 text; kind 3 hashes `domain:<domain>` as its hardware id:
 *
 *   off  size  field
 *   0    1     0x10 | kind (1 = product installation with a MAK/retail key, 2 = KMS host)
 *   1    8     keyRef: SHA-256("volact-key-ref/v1\0" || key)[0..8] — finds the key, reveals nothing of it
 *   9    8     hardwareRef: SHA-256("volact-hardware-ref/v1\0" || hardware id)[0..8]
 *   17   4     groupsRef: SHA-256("volact-groups-ref/v1\0" || group ids, sorted, 16 bytes each)[0..4]
 *   KMS host only:
 *   21   16    hostKeyRef: SHA-256(host public key)[0..16]
 *   activation object (a disconnected forest's, by phone) only, kind 3:
 *   21   16    domainRef: SHA-256("volact-domain-ref/v1\0" || domain)[0..16]
 *   end  4     proof: HMAC-SHA256(proofKey(key), bytes before)[0..4]
 *
 * The same key on the same hardware always gives the same IID (a re-imaged machine), another
 * hardware id another IID. The proof shows the IID was made by someone holding the key: an IID
 * heard once cannot be edited into IIDs of other machines to spend the key's activations.
 */
export type InstallationKind = 'installation' | 'kms-host' | 'activation-object';
const KIND_CODE: Record<InstallationKind, number> = { installation: 1, 'kms-host': 2, 'activation-object': 3 };
const IID_BYTES: Record<InstallationKind, number> = { installation: 25, 'kms-host': 41, 'activation-object': 41 };
const PROOF_BYTES = 4;

const groupsFor = (bytes: number) =>
  Math.ceil((2n ** BigInt(8 * bytes) - 1n).toString().length / DATA_DIGITS_PER_GROUP);
export const IID_GROUPS: Record<InstallationKind, number> = {
  installation: groupsFor(IID_BYTES.installation),
  'kms-host': groupsFor(IID_BYTES['kms-host']),
  'activation-object': groupsFor(IID_BYTES['activation-object']),
};

export interface InstallationId {
  readonly kind: InstallationKind;
  readonly keyRef: Buffer;
  readonly hardwareRef: Buffer;
  readonly groupsRef: Buffer;
  readonly hostKeyRef?: Buffer;
  readonly domainRef?: Buffer;
  readonly proof: Buffer;
  readonly bytes: Buffer;
  /** The digit-group form people read and type. */
  readonly text: string;
}

export function keyRefOf(key: ProductKey | string): Buffer {
  const text = typeof key === 'string' ? key : key.text;
  return sha256(Buffer.from(`volact-key-ref/v1\0${text}`)).subarray(0, 8);
}

/** The key-derived secret that makes an IID's proof; the authority keeps it sealed. */
export function proofKeyOf(key: ProductKey | string): Buffer {
  const text = typeof key === 'string' ? key : key.text;
  return sha256(Buffer.from(`volact-iid-proof/v1\0${text}`));
}

export function hardwareRefOf(hardwareId: string): Buffer {
  return sha256(Buffer.from(`volact-hardware-ref/v1\0${hardwareId}`)).subarray(0, 8);
}

export function domainRefOf(domain: string): Buffer {
  return sha256(Buffer.from(`volact-domain-ref/v1\0${domain}`)).subarray(0, 16);
}

export function hostKeyRefOf(hostPublicKey: Uint8Array): Buffer {
  return sha256(hostPublicKey).subarray(0, 16);
}

export function groupsRefOf(groupIds: readonly string[]): Buffer {
  const h = createHash('sha256').update('volact-groups-ref/v1\0');
  for (const g of [...groupIds].sort()) h.update(guidToBytes(g));
  return h.digest().subarray(0, 4);
}

function proofOf(proofKey: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', proofKey).update(body).digest().subarray(0, PROOF_BYTES);
}

function render(kind: InstallationKind, bytes: Buffer): string {
  return encodeDigitGroups(bytesToBigInt(bytes), IID_GROUPS[kind]);
}

export function makeInstallationId(
  input:
    | { kind: 'installation'; key: ProductKey; hardwareId: string; groupIds: readonly string[] }
    | { kind: 'kms-host'; key: ProductKey; hardwareId: string; groupIds: readonly string[]; hostPublicKey: Uint8Array }
    | { kind: 'activation-object'; key: ProductKey; domain: string; groupIds: readonly string[] },
): InstallationId {
  const parts = [
    Buffer.from([0x10 | KIND_CODE[input.kind]]),
    keyRefOf(input.key),
    hardwareRefOf(input.kind === 'activation-object' ? `domain:${input.domain}` : input.hardwareId),
    groupsRefOf(input.groupIds),
  ];
  if (input.kind === 'kms-host') parts.push(hostKeyRefOf(input.hostPublicKey));
  if (input.kind === 'activation-object') parts.push(domainRefOf(input.domain));
  const body = Buffer.concat(parts);
  const bytes = Buffer.concat([body, proofOf(proofKeyOf(input.key), body)]);
  return decodeInstallationBytes(bytes, render(input.kind, bytes));
}

const IID = INSTALLATION_ID_LAYOUT.at;
const IID_FIXED = INSTALLATION_ID_LAYOUT.size;
/** hostKeyRef (kind 0x12) or domainRef (kind 0x13), after the fixed fields. */
const EXTRA_REF_BYTES = 16;

function field(bytes: Buffer, f: Field): Buffer {
  return bytes.subarray(f.offset, f.offset + f.size);
}

function decodeInstallationBytes(bytes: Buffer, text: string): InstallationId {
  const kind: InstallationKind =
    bytes[0] === 0x12 ? 'kms-host' : bytes[0] === 0x13 ? 'activation-object' : 'installation';
  return {
    kind,
    keyRef: field(bytes, IID.keyRef),
    hardwareRef: field(bytes, IID.hardwareRef),
    groupsRef: field(bytes, IID.groupsRef),
    ...(kind === 'kms-host' ? { hostKeyRef: bytes.subarray(IID_FIXED, IID_FIXED + EXTRA_REF_BYTES) } : {}),
    ...(kind === 'activation-object' ? { domainRef: bytes.subarray(IID_FIXED, IID_FIXED + EXTRA_REF_BYTES) } : {}),
    proof: bytes.subarray(bytes.length - PROOF_BYTES),
    bytes,
    text,
  };
}

/** Strict parser of a typed IID: digits, group checks ("group 3 is wrong"), then the layout. */
export function parseInstallationId(input: string): InstallationId {
  const { value, groups, text } = decodeDigitGroups(
    input,
    [IID_GROUPS.installation, IID_GROUPS['kms-host']],
    'installation ID',
  );
  // A KMS host's and an activation object's IIDs have the same size: the kind byte tells them apart.
  const size = groups === IID_GROUPS.installation ? IID_BYTES.installation : IID_BYTES['kms-host'];
  let bytes: Buffer;
  try {
    bytes = bigIntToBytes(value, size);
  } catch {
    throw new CoreError('IID_INVALID', 'the installation ID is out of range: it was not made by volact');
  }
  const kind = (Object.keys(KIND_CODE) as InstallationKind[]).find(
    (k) => bytes[0] === (0x10 | KIND_CODE[k]) && IID_BYTES[k] === size,
  );
  if (kind === undefined) {
    throw new CoreError('IID_INVALID', `the installation ID's first byte ${bytes[0]} is not a volact IID version`);
  }
  // The digits read are the canonical text (the value padded to its groups): no re-rendering.
  return decodeInstallationBytes(bytes, text);
}

/** True when the IID's proof was made with this key's proof key. */
export function installationProofValid(iid: InstallationId, proofKey: Uint8Array): boolean {
  return secretsEqual(proofOf(proofKey, iid.bytes.subarray(0, iid.bytes.length - PROOF_BYTES)), iid.proof);
}

/**
 * Confirmation ID (CID): a short signature (short-signature.ts), the day it was issued and the
 * key index of its signer, as one number in digit groups:
 *
 *   value = ((keyIndex · 2^16) + issuedDay) · SHORT_SIGNATURE_RANGE + e·L + s
 *
 * keyIndex 0 = signed by a root with short signature v1 (every CID made before key indexes
 * existed parses as index 0); 1..3 = signed by the online key whose delegation sequence n has
 * n mod 3 + 1 = index, with short signature v2. 4 · 2^16 · SHORT_SIGNATURE_RANGE still fits the
 * same 24 groups (CID_GROUPS): the index costs no digit. For a product installation it signs the
 * IID; for a KMS host it signs the host certificate the host rebuilds around it (certificate.ts, v2).
 */
const DAY_RANGE = 1n << 16n;
const KEY_INDEX_RANGE = 4n;
export const CID_GROUPS = Math.ceil(
  (KEY_INDEX_RANGE * DAY_RANGE * SHORT_SIGNATURE_RANGE - 1n).toString().length / DATA_DIGITS_PER_GROUP,
);

export type CidKeyIndex = 0 | 1 | 2 | 3;

export interface ConfirmationId {
  readonly issuedDay: number;
  /** 0: a root signed (v1); 1..3: the online key of that index signed (v2). */
  readonly keyIndex: CidKeyIndex;
  readonly signature: ShortSignature;
  readonly text: string;
}

/** The online key that signs confirmations (v2), and its key index in the CIDs it signs. */
export interface ConfirmationSigner {
  readonly keyIndex: 1 | 2 | 3;
  readonly short: ShortSigningKey;
}

/**
 * The public keys a CID of a key index may be signed by on a day: roots for index 0, the online
 * keys delegated for confirmations with that index for 1..3 (through the TrustStore). At most a
 * few: each is tried.
 */
export interface ConfirmationKeys {
  forIndex(index: CidKeyIndex, issuedDay: number): readonly Uint8Array[];
}

/**
 * Until callers read their TrustStore: only the product's root, for every index (the authority's
 * interim online key is the root's own key signing v2, see authority context.ts). One function,
 * to be replaced by `delegatesForIndex` lookups.
 */
export function rootConfirmationKeys(rootPublicKeyRaw: Uint8Array): ConfirmationKeys {
  return { forIndex: () => [rootPublicKeyRaw] };
}

export function dayOf(ms: number): number {
  return Math.floor(ms / DAY);
}

export function encodeConfirmationId(
  issuedDay: number,
  signature: ShortSignature,
  keyIndex: CidKeyIndex = 0,
): ConfirmationId {
  const value =
    (BigInt(keyIndex) * DAY_RANGE + BigInt(issuedDay)) * SHORT_SIGNATURE_RANGE + shortSignatureToBigInt(signature);
  return { issuedDay, keyIndex, signature, text: encodeDigitGroups(value, CID_GROUPS) };
}

export function parseConfirmationId(input: string): ConfirmationId {
  const { value } = decodeDigitGroups(input, [CID_GROUPS], 'confirmation ID');
  const top = value / SHORT_SIGNATURE_RANGE;
  if (top >= KEY_INDEX_RANGE * DAY_RANGE) throw new CoreError('CID_INVALID', 'the confirmation ID is out of range');
  return encodeConfirmationId(
    Number(top % DAY_RANGE),
    shortSignatureFromBigInt(value % SHORT_SIGNATURE_RANGE),
    Number(top / DAY_RANGE) as CidKeyIndex,
  );
}

/** Short signature of an artefact whose signer a key index names: v1 for a root (0), else v2. */
export function verifyShortForIndex(
  keyIndex: CidKeyIndex,
  publicKeyRaw: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: ShortSignature,
): boolean {
  return keyIndex === 0
    ? shortVerify(publicKeyRaw, context, message, signature)
    : shortVerifyV2(publicKeyRaw, context, message, signature);
}

const INSTALLATION_CONTEXT = 'installation-confirmation';

// The product's full group id is signed too: a MAK's confirmation licenses its own product only.
function installationMessage(iid: InstallationId, groupId: string, issuedDay: number): Buffer {
  const day = Buffer.alloc(2);
  day.writeUInt16BE(issuedDay);
  return Buffer.concat([iid.bytes, guidToBytes(groupId), day]);
}

/** The authority's confirmation of an installation, by its online key (v2, about 40 µs). */
export function confirmInstallation(
  iid: InstallationId,
  groupId: string,
  issuedDay: number,
  signer: ConfirmationSigner,
): ConfirmationId {
  return encodeConfirmationId(
    issuedDay,
    shortSignV2(signer.short, INSTALLATION_CONTEXT, installationMessage(iid, groupId, issuedDay)),
    signer.keyIndex,
  );
}

/** A key-index-0 confirmation, by a root (v1): what CIDs were before online keys. Tests and vectors only. */
export function confirmInstallationWithRoot(
  iid: InstallationId,
  groupId: string,
  issuedDay: number,
  root: ShortSigningKey,
): ConfirmationId {
  return encodeConfirmationId(
    issuedDay,
    shortSign(root, INSTALLATION_CONTEXT, installationMessage(iid, groupId, issuedDay)),
    0,
  );
}

/**
 * True when `cid` is a confirmation of exactly this installation ID for this group by one of the
 * keys `keys` gives for the CID's key index and day (v1 for index 0, v2 for 1..3).
 */
export function verifyInstallationConfirmation(
  iid: InstallationId,
  groupId: string,
  cid: ConfirmationId,
  keys: ConfirmationKeys,
): boolean {
  const message = installationMessage(iid, groupId, cid.issuedDay);
  return keys
    .forIndex(cid.keyIndex, cid.issuedDay)
    .some((key) => verifyShortForIndex(cid.keyIndex, key, INSTALLATION_CONTEXT, message, cid.signature));
}
