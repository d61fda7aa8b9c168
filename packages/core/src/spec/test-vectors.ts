/**
 * The normative test vectors (docs/test-vectors.md) and the layout tables of docs/protocol.md,
 * generated from the code: fixed keys (Ed25519 private keys from fixed seeds), fixed times,
 * fixed nonces. Ed25519 and the short signatures are deterministic, so the same code always
 * writes the same bytes; test-vectors.test.ts regenerates both documents and compares them
 * with the files, and decodes and verifies every vector with the real decoders. A vector's
 * field table takes every offset and size from wire/layout.ts (layoutTable) and its values
 * from the real decoders, so a change of a layout changes the doc (and fails the test until
 * the doc is regenerated).
 *
 * A documentation tool, not part of core's public API. `npm run docs:vectors` rewrites the
 * two files (this module run with --write).
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DAY } from '../clock.js';
import { keyFingerprint, rawPublicKey, signMessage } from '../crypto.js';
import { fileSigner } from '../trust/signer.js';
import { bytesToGuid, guidToBytes } from '../ids.js';
import { GROUP_BOUND_CODES, KEY_ALPHABET, groupTagOf, makeKey, type ProductKey } from '../keys.js';
import { licenceStateCode, licenceStateFromCode } from '../licence-state.js';
import {
  buildPhoneCertificate,
  decodeHostCertificate,
  issueHostCertificate,
  signPhoneCertificateWithRoot,
  type HostCertificate,
} from '../certificate.js';
import {
  confirmInstallation,
  confirmInstallationWithRoot,
  dayOf,
  makeInstallationId,
  parseInstallationId,
  keyRefOf,
  hostKeyRefOf,
  type ConfirmationId,
  type InstallationId,
} from '../installation-id.js';
import { shortSigningKey } from '../short-signature.js';
import { signActivationObject, type ActivationObject } from '../activation-object.js';
import { leafHash, merkleTree, rootFromProof, type ProofStep } from '../wire/merkle.js';
import {
  BATCH_CONTEXT,
  HostErrorCode,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeErrorResponse,
  encodeActivationRequest,
  encodeActivationResponse,
  encodeErrorResponse,
  encodeResponseBody,
  encodeResponseExtensions,
  hostErrorName,
  type ActivationRequest,
  type ResponseBody,
} from '../wire/messages.js';
import { FRAME_HEADER, frame } from '../wire/frame.js';
import { renderTrustLayoutBlocks, renderTrustVectorSections } from './trust-vectors.js';
import { decodeHostStatus, makeHostStatus } from '../trust/revocation.js';
import {
  ACTIVATION_REQUEST_LAYOUT,
  ERROR_RESPONSE_LAYOUT,
  HOST_CERTIFICATE_LAYOUT,
  HOST_CERTIFICATE_V2_LAYOUT,
  INSTALLATION_ID_LAYOUT,
  LAYOUTS,
  RESPONSE_BODY_LAYOUT,
  RESPONSE_EXTENSION_LAYOUT,
  markdownTable,
  renderLayoutTable,
  type Field,
  type Layout,
} from '../wire/layout.js';

export const DOCS_SCRIPT = 'npm run docs:vectors';

export interface SigningKey {
  readonly seed: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly publicKeyRaw: Buffer;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A fixed seed: SHA-256 of a label. Anyone can recompute it; these keys sign nothing real. */
export function vectorSeed(label: string): Buffer {
  return hash('sha256', `volact test vectors/v1\0${label}`, 'buffer');
}

export function keyFromSeed(seed: Buffer): SigningKey {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  return { seed, privateKey, publicKey, publicKeyRaw: rawPublicKey(publicKey) };
}

/** Inputs every vector is made from. */
export const VECTOR_INPUTS = {
  /** Written in the order of its bytes: 00 11 22 … ff. */
  groupId: '00112233-4455-6677-8899-aabbccddeeff',
  /** Another group, whose tag the group-bound key does not carry. */
  otherGroupId: 'ffeeddcc-bbaa-9988-7766-554433221100',
  groupName: 'office',
  clientIds: [
    'c1000000-0000-4000-8000-000000000001',
    'c1000000-0000-4000-8000-000000000002',
    'c1000000-0000-4000-8000-000000000003',
    'c1000000-0000-4000-8000-000000000004',
  ],
  /** The response vector answers this client (index 2 of a batch of 4: a proof of two steps, both sides). */
  answered: 2,
  certificateSerial: '5e000000-0000-4000-8000-0000000000c1',
  hostKeyId: '4b000000-0000-4000-8000-000000000001',
  /** 2026-01-01T00:00:00.000Z. */
  certificateIssuedAt: Date.UTC(2026, 0, 1),
  certificateDays: 180,
  /** 2026-01-15T12:00:00.000Z: the request's and the response's time. */
  now: Date.UTC(2026, 0, 15, 12),
  count: 25,
  activationIntervalMin: 120,
  renewalIntervalMin: 10_080,
  hardwareId: 'hw-test-vector-0001',
  activationObjectId: '0b000000-0000-4000-8000-000000000001',
  activationObjectName: 'office-corp',
  domain: 'corp.example',
} as const;

function nonceOf(i: number): Buffer {
  return Buffer.from(Array.from({ length: 16 }, (_, k) => (16 * i + k) & 0xff));
}

export interface TestVectors {
  readonly root: SigningKey;
  readonly host: SigningKey;
  readonly request: { readonly fields: ActivationRequest; readonly bytes: Buffer };
  readonly certificate: Buffer;
  readonly batch: {
    readonly bodies: readonly Buffer[];
    readonly leaves: readonly Buffer[];
    readonly root: Buffer;
    readonly proof: readonly ProofStep[];
    readonly signature: Buffer;
  };
  readonly response: { readonly fields: ResponseBody; readonly bytes: Buffer };
  /**
   * The same request in version 2, answered alone (a batch of one) with the host status stapled:
   * the request, the response, and its one extension item.
   */
  readonly v2: { readonly request: Buffer; readonly response: Buffer; readonly item: Buffer; readonly status: Buffer };
  readonly error: Buffer;
  /** The classic MAK (type 3, says no group): the installation and confirmation IDs are made with it. */
  readonly makKey: ProductKey;
  /** A MAK minted for the group (type 5): its payload starts with the group's tag. */
  readonly groupMakKey: ProductKey;
  readonly hostKey: ProductKey;
  readonly installationId: InstallationId;
  readonly confirmationId: ConfirmationId;
  /** The same installation confirmed by an online key (seed label `online key`), key index 1: short signature v2. */
  readonly onlineKey: SigningKey;
  readonly onlineConfirmationId: ConfirmationId;
  readonly phoneCertificate: Buffer;
  readonly activationObject: ActivationObject;
}

export function buildTestVectors(): TestVectors {
  const v = VECTOR_INPUTS;
  const root = keyFromSeed(vectorSeed('root'));
  const host = keyFromSeed(vectorSeed('kms host'));
  const groupId = guidToBytes(v.groupId);

  const requestFields: ActivationRequest = {
    licenceState: licenceStateCode('initial-grace'),
    groupId,
    clientId: guidToBytes(v.clientIds[v.answered]),
    nonce: nonceOf(v.answered),
    clientTime: v.now - 1_500,
  };
  const request = { fields: requestFields, bytes: encodeActivationRequest(requestFields, 1) };

  const certificate = issueHostCertificate(
    {
      hostPublicKey: host.publicKeyRaw,
      serial: v.certificateSerial,
      hostKeyId: v.hostKeyId,
      issuedAt: v.certificateIssuedAt,
      expiresAt: v.certificateIssuedAt + v.certificateDays * DAY,
      groupIds: [v.groupId],
    },
    fileSigner(root),
  );

  // One batch of four answers, signed once; the vector is the third client's.
  const bodiesFields: ResponseBody[] = v.clientIds.map((clientId, i) => ({
    groupId,
    clientId: guidToBytes(clientId),
    nonce: nonceOf(i),
    hostTime: v.now,
    count: v.count - v.clientIds.length + 1 + i,
    activationIntervalMin: v.activationIntervalMin,
    renewalIntervalMin: v.renewalIntervalMin,
  }));
  const bodies = bodiesFields.map((f) => encodeResponseBody(f, 1));
  const leaves = bodies.map(leafHash);
  const tree = merkleTree(leaves);
  const signature = signMessage(host.privateKey, Buffer.concat([BATCH_CONTEXT, tree.root]));
  const proof = tree.proofs[v.answered] as ProofStep[];
  const response = {
    fields: bodiesFields[v.answered] as ResponseBody,
    bytes: encodeActivationResponse(bodies[v.answered] as Buffer, certificate, proof, signature),
  };

  const error = encodeErrorResponse(HostErrorCode.MALFORMED_REQUEST, undefined, 'request check bytes do not match');

  const v2Body = encodeResponseBody(bodiesFields[v.answered] as ResponseBody, 2);
  const v2Signature = signMessage(host.privateKey, Buffer.concat([BATCH_CONTEXT, leafHash(v2Body)]));
  const status = makeHostStatus(
    { hostKeyRef: hostKeyRefOf(host.publicKeyRaw), listVersion: 1, issuedAt: v.now, nextUpdate: v.now + 7 * DAY },
    fileSigner(root),
  );
  const area = encodeResponseExtensions({ hostStatus: status, transitions: [], delegations: [] });
  const v2 = {
    request: encodeActivationRequest(requestFields, 2),
    response: encodeActivationResponse(v2Body, certificate, [], v2Signature, 0, area),
    item: area.subarray(2),
    status,
  };

  const shortKey = shortSigningKey(root.privateKey);
  const issuedDay = dayOf(v.now);
  const makKey = makeKey('mak', vectorSeed('mak key').subarray(0, 13));
  const groupMakKey = makeKey('mak', vectorSeed('group mak key').subarray(0, 13), groupId);
  const installationId = makeInstallationId({
    kind: 'installation',
    key: makKey,
    hardwareId: v.hardwareId,
    groupIds: [v.groupId],
  });
  const confirmationId = confirmInstallationWithRoot(installationId, v.groupId, issuedDay, shortKey);
  const onlineKey = keyFromSeed(vectorSeed('online key'));
  const onlineConfirmationId = confirmInstallation(installationId, v.groupId, issuedDay, {
    keyIndex: 1,
    short: shortSigningKey(onlineKey.privateKey),
  });

  const hostKey = makeKey('kms-host', vectorSeed('kms host key').subarray(0, 13));
  const phoneFields = {
    keyRef: keyRefOf(hostKey),
    issuedDay,
    validityDays: 365,
    groupIds: [v.groupId],
  };
  const phoneSignature = signPhoneCertificateWithRoot(
    { ...phoneFields, hostKeyRef: hostKeyRefOf(host.publicKeyRaw) },
    shortKey,
  );
  const phoneCertificate = buildPhoneCertificate(
    { ...phoneFields, hostPublicKey: host.publicKeyRaw, issuerPublicKeyRaw: root.publicKeyRaw },
    phoneSignature,
  );

  const activationObject = signActivationObject(
    {
      name: v.activationObjectName,
      objectId: v.activationObjectId,
      group: { id: v.groupId, name: v.groupName },
      domain: v.domain,
      issuedAt: v.certificateIssuedAt,
    },
    fileSigner(root),
  );

  return {
    root,
    host,
    request,
    certificate,
    batch: { bodies, leaves, root: tree.root, proof, signature },
    response,
    v2,
    error,
    makKey,
    groupMakKey,
    hostKey,
    installationId,
    confirmationId,
    onlineKey,
    onlineConfirmationId,
    phoneCertificate,
    activationObject,
  };
}

// ---- rendering -------------------------------------------------------------------------------

/** Hex in lines of 32 bytes, as a fenced block. */
function hexBlock(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 64) lines.push(hex.slice(i, i + 64));
  return ['```text', ...lines, '```'].join('\n');
}

const iso = (ms: number) => new Date(ms).toISOString();
const hx = (b: Buffer) => `\`${b.toString('hex')}\``;

/** An unsigned integer field (u8..u64), read as its layout declares it. */
function uintAt(b: Buffer, f: Field): bigint {
  if (!f.type.startsWith('u')) throw new Error(`field ${f.name} is ${f.type}, not an integer`);
  let n = 0n;
  for (const x of b.subarray(f.offset, f.offset + f.size)) n = (n << 8n) | BigInt(x);
  return n;
}

const timeOf = (ms: number) => `${ms} = ${iso(ms)}`;

/**
 * A part after a layout's fixed fields, as one vector holds it. `part` names the variable part
 * of the layout it belongs to (default: `name`); `size` is the size the decoder read, omitted
 * when the layout declares a number (then that number is the size), or `null` for the one part
 * that takes the bytes no other row takes (a proof of p steps).
 */
interface PartRow {
  readonly name: string;
  readonly part?: string;
  readonly size?: number | null;
  /** Write `…` instead of the bytes (they are shown above). */
  readonly elide?: boolean;
  readonly value: string | ((at: { offset: number; size: number }) => string);
}

/**
 * The field table of one vector: the layout's fixed fields, each at the offset and of the size
 * wire/layout.ts declares (every field, in its order: a field added there and not described
 * here is an error), then the parts after them, one after another. A part's offset or size the
 * layout writes as a number must be the one found here, and the rows must cover the bytes
 * exactly: a change of layout.ts changes this table or stops the generator.
 */
function layoutTable<N extends string>(
  layout: Layout<N>,
  bytes: Buffer,
  values: Readonly<Record<N, string>>,
  parts: readonly PartRow[] = [],
): string {
  const named = new Set<string>(layout.fields.map((f) => f.name));
  for (const name of Object.keys(values)) {
    if (!named.has(name)) throw new Error(`layout ${layout.id} has no field ${name}`);
  }
  const rows: string[][] = layout.fields.map((f) => {
    const value = (values as Record<string, string | undefined>)[f.name];
    if (value === undefined) throw new Error(`the ${layout.id} vector does not describe field ${f.name}`);
    return [String(f.offset), String(f.size), `\`${f.name}\``, slice(bytes, f.offset, f.offset + f.size), value];
  });
  const declaredNumber = (text: string) => (/^\d+$/.test(text) ? Number(text) : undefined);
  const sizes = parts.map((p) => {
    const declared = layout.variable.find((v) => v.name === (p.part ?? p.name));
    if (!declared) throw new Error(`layout ${layout.id} declares no part ${p.part ?? p.name}`);
    const fixed = declaredNumber(declared.size);
    if (p.size === undefined) {
      if (fixed === undefined) throw new Error(`layout ${layout.id}: the size of ${declared.name} is ${declared.size}`);
      return fixed;
    }
    if (p.size !== null && fixed !== undefined && p.size !== fixed) {
      throw new Error(`layout ${layout.id} declares ${declared.name} of ${fixed} bytes, the vector has ${p.size}`);
    }
    return p.size;
  });
  const known = sizes.reduce<number>((n, s) => n + (s ?? 0), layout.size);
  let offset = layout.size;
  let previous: string | undefined;
  parts.forEach((p, i) => {
    const size = sizes[i] ?? bytes.length - known;
    const part = p.part ?? p.name;
    const declared = declaredNumber(layout.variable.find((v) => v.name === part)?.offset ?? '..');
    if (part !== previous && declared !== undefined && declared !== offset) {
      throw new Error(`layout ${layout.id} puts ${part} at ${declared}, the vector at ${offset}`);
    }
    const value = typeof p.value === 'function' ? p.value({ offset, size }) : p.value;
    const hex = p.elide ? '…' : slice(bytes, offset, offset + size);
    rows.push([String(offset), String(size), `\`${p.name}\``, hex, value]);
    offset += size;
    previous = part;
  });
  if (offset !== bytes.length) {
    throw new Error(`the ${layout.id} table covers ${offset} bytes of ${bytes.length}`);
  }
  return markdownTable(['off', 'size', 'field', 'bytes (hex)', 'value'], rows);
}

function slice(b: Buffer, from: number, to: number): string {
  return hx(b.subarray(from, to));
}

/** The group ids of a certificate (version 1 or 2), one row each, sized as the decoder read them. */
function groupIdRows(c: HostCertificate, layout: Layout): PartRow[] {
  const each = (c.tbs.length - layout.size) / c.groupIds.length;
  return c.groupIds.map((g, i) => ({ name: `groupIds[${i}]`, part: 'groupIds', size: each, value: g }));
}

function certificateTable(bytes: Buffer): string {
  const c = decodeHostCertificate(bytes);
  const L = HOST_CERTIFICATE_LAYOUT;
  return layoutTable(
    L,
    bytes,
    {
      version: String(c.version),
      groupCount: String(c.groupIds.length),
      hostPublicKey: 'the host public key below',
      serial: c.serial,
      hostKeyId: c.hostKeyId,
      issuedAt: timeOf(c.issuedAt),
      expiresAt: timeOf(c.expiresAt),
      issuer: `SHA-256(root public key), first ${L.at.issuer.size} bytes`,
    },
    [...groupIdRows(c, L), { name: 'signature', size: c.signature.length, value: 'Ed25519 by the root' }],
  );
}

/** The symbols of a product key as typed (no dashes) and their values. */
function keySymbols(key: ProductKey): { text: string; values: number[] } {
  const text = key.text.replace(/-/g, '');
  return { text, values: [...text].map((ch) => KEY_ALPHABET.indexOf(ch)) };
}

/**
 * Where a product key's parts are (docs/protocol.md, "Product keys"; keys.ts): symbol 0 the
 * type, 1..20 the payload (1..4 a group-bound key's tag, 20 bits), 21 Damm's check, 22..24
 * the hash check. Key symbols are not a byte layout, so they are not in wire/layout.ts; the
 * test reads every part back from the key text on its own.
 */
const KEY_PARTS = { type: [0, 1], payload: [1, 21], tag: [1, 5], check: [21, 22], hash: [22, 25] } as const;

function keyTable(key: ProductKey, groupId: string | undefined): string {
  const { text, values } = keySymbols(key);
  const sym = ([from, to]: readonly [number, number]) => `\`${text.slice(from, to)}\``;
  const at = ([from, to]: readonly [number, number]) => (to - from === 1 ? String(from) : `${from}..${to - 1}`);
  const vals = ([from, to]: readonly [number, number]) => values.slice(from, to).join(', ');
  const typeCode = values[KEY_PARTS.type[0]] as number;
  const boundCode = (GROUP_BOUND_CODES as Record<string, number | undefined>)[key.type];
  const rows: string[][] = [
    [
      at(KEY_PARTS.type),
      'type',
      sym(KEY_PARTS.type),
      `${typeCode} (${key.type}${typeCode === boundCode ? ', bound to one group' : ''})`,
    ],
    [at(KEY_PARTS.payload), 'payload', sym(KEY_PARTS.payload), `${hx(key.payload)} (13 bytes, the low 4 bits zero)`],
  ];
  if (key.groupTag !== null) {
    if (groupId === undefined) throw new Error('a group-bound key vector names its group');
    rows.push([
      at(KEY_PARTS.tag),
      'group tag',
      sym(KEY_PARTS.tag),
      `\`0x${key.groupTag.toString(16).padStart(5, '0')}\` = ${key.groupTag} (group \`${groupId}\`)`,
    ]);
  }
  rows.push(
    [at(KEY_PARTS.check), 'check (Damm, GF(32))', sym(KEY_PARTS.check), vals(KEY_PARTS.check)],
    [at(KEY_PARTS.hash), 'check (SHA-256, 15 bits)', sym(KEY_PARTS.hash), vals(KEY_PARTS.hash)],
  );
  return markdownTable(['symbols', 'part', 'typed', 'value'], rows);
}

/** `SHA-256("volact-key-group/v1\0" ‖ group id bytes)`, written out, and the tag it gives. */
function groupTagDerivation(groupId: string): { digest: Buffer; tag: number } {
  const digest = hash('sha256', Buffer.concat([Buffer.from('volact-key-group/v1\0'), guidToBytes(groupId)]), 'buffer');
  const tag = groupTagOf(guidToBytes(groupId));
  // The doc writes the derivation out: it must still be what keys.ts computes.
  if (digest.readUInt32BE(0) >>> 12 !== tag) throw new Error('groupTagOf is no longer the derivation the doc writes');
  return { digest, tag };
}

function renderVectors(t: TestVectors): string {
  const v = VECTOR_INPUTS;
  const r = t.request.bytes;
  const resp = t.response.bytes;
  // Every value in the field tables is read back by the real decoders.
  const req = decodeActivationRequest(r);
  const res = decodeActivationResponse(resp);
  const err = decodeErrorResponse(t.error);
  const iid = parseInstallationId(t.installationId.text);
  const p2 = t.phoneCertificate;
  const c2 = decodeHostCertificate(p2);
  const REQ = ACTIVATION_REQUEST_LAYOUT.at;
  const RES = RESPONSE_BODY_LAYOUT.at;
  const ERR = ERROR_RESPONSE_LAYOUT.at;
  const IID = INSTALLATION_ID_LAYOUT.at;
  const V2 = HOST_CERTIFICATE_V2_LAYOUT.at;
  const o = t.activationObject;
  if (o.format !== 'volact-activation-object/3') throw new Error('the vector is an online activation object');
  const signedObject = `volact/activation-object/v3\\0${JSON.stringify([o.name, o.objectId, o.group.id, o.group.name, o.domain, o.issuedAt, o.expiresAt, o.issuer])}`;
  const out: string[] = [];
  const section = (title: string, ...parts: string[]) => out.push(`## ${title}`, '', ...parts.flatMap((p) => [p, '']));

  out.push(
    '# Test vectors',
    '',
    `<!-- Generated by packages/core/src/spec/test-vectors.ts: do not edit, run \`${DOCS_SCRIPT}\`. -->`,
    '',
    'Normative: an implementation of [the protocol](protocol.md) must produce and accept exactly',
    'these bytes. They are generated by code from fixed inputs and checked by a test that',
    'regenerates them, decodes each one with the real decoders and verifies its signatures.',
    'The keys are Ed25519 private keys whose 32-byte seed is',
    '`SHA-256("volact test vectors/v1\\0" ‖ label)`; they sign nothing real.',
    '',
  );
  section(
    'Keys and inputs',
    markdownTable(
      ['what', 'value'],
      [
        ['root seed (label `root`)', hx(t.root.seed)],
        ['root public key', hx(t.root.publicKeyRaw)],
        ['root fingerprint (issuer)', hx(keyFingerprint(t.root.publicKeyRaw))],
        ['host seed (label `kms host`)', hx(t.host.seed)],
        ['host public key', hx(t.host.publicKeyRaw)],
        ['group id', `\`${v.groupId}\` = ${hx(guidToBytes(v.groupId))}`],
        ['now', `${v.now} = ${iso(v.now)}`],
      ],
    ),
  );
  section(
    'ActivationRequest',
    `The client \`${v.clientIds[v.answered]}\`, in initial grace, asks at ${iso(v.now - 1_500)}:`,
    hexBlock(r),
    layoutTable(ACTIVATION_REQUEST_LAYOUT, r, {
      version: String(uintAt(r, REQ.version)),
      type: String(uintAt(r, REQ.type)),
      licenceState: `${req.licenceState} (${licenceStateFromCode(req.licenceState) ?? 'unknown'})`,
      flags: String(uintAt(r, REQ.flags)),
      groupId: bytesToGuid(req.groupId),
      clientId: bytesToGuid(req.clientId),
      nonce: '',
      clientTime: timeOf(req.clientTime),
      check: `SHA-256(bytes 0..${REQ.check.offset}), first ${REQ.check.size} bytes`,
    }),
    `On the wire, the frame is the length ${hx(frame(r).subarray(0, FRAME_HEADER))} (${r.length}) followed by these bytes.`,
  );
  section(
    'Host certificate (version 1)',
    `Issued by the root for the host key, valid from ${iso(v.certificateIssuedAt)} (inclusive) to ${iso(v.certificateIssuedAt + v.certificateDays * DAY)} (exclusive):`,
    hexBlock(t.certificate),
    certificateTable(t.certificate),
    `The signature is Ed25519 by the root over \`"volact/host-cert/v1\\0" ‖ bytes 0..${decodeHostCertificate(t.certificate).tbs.length}\`.`,
  );
  section(
    'Merkle batch',
    `The host answered four clients in one turn (\`${v.clientIds[0]}\` … \`${v.clientIds[3]}\`, nonces \`00…0f\`, \`10…1f\`, \`20…2f\`, \`30…3f\`, counts ${v.count - 3}…${v.count}) and signed one root. Leaves are \`SHA-256(0x00 ‖ body)\`:`,
    markdownTable(
      ['leaf', 'hash'],
      t.batch.leaves.map((l, i) => [String(i), hx(l)]),
    ),
    `Proof of leaf ${v.answered} (side 0: the sibling is on the right, the running hash on the left; side 1: the sibling is on the left):`,
    markdownTable(
      ['step', 'side', 'sibling', 'hash after the step'],
      (() => {
        let h = t.batch.leaves[v.answered] as Buffer;
        return t.batch.proof.map((s, i) => {
          h = rootFromProof(h, [s]);
          return [String(i + 1), s.siblingLeft ? '1' : '0', hx(s.sibling), hx(h)];
        });
      })(),
    ),
    `Root: ${hx(t.batch.root)}. Signature, Ed25519 by the host over \`"volact/kms-batch/v1\\0" ‖ root\`: ${hx(t.batch.signature)}.`,
  );
  section(
    'ActivationResponse',
    `The answer to the request above (leaf ${v.answered} of the batch):`,
    hexBlock(resp),
    layoutTable(
      RESPONSE_BODY_LAYOUT,
      resp,
      {
        version: String(uintAt(resp, RES.version)),
        type: String(uintAt(resp, RES.type)),
        reserved: String(uintAt(resp, RES.reserved)),
        groupId: bytesToGuid(res.groupId),
        clientId: bytesToGuid(res.clientId),
        nonce: "the request's",
        hostTime: timeOf(res.hostTime),
        count: String(res.count),
        activationInterval: `${res.activationIntervalMin} ${RES.activationInterval.unit ?? ''}`.trim(),
        renewalInterval: `${res.renewalIntervalMin} ${RES.renewalInterval.unit ?? ''}`.trim(),
      },
      [
        { name: 'certLength', value: String(res.certificate.length) },
        { name: 'certificate', size: res.certificate.length, elide: true, value: 'the host certificate above' },
        { name: 'proofSteps', value: String(res.proof.length) },
        {
          name: 'proof',
          size: null,
          elide: true,
          value: ({ size }) => `the proof above, ${size / res.proof.length} bytes a step`,
        },
        { name: 'signature', size: res.signature.length, elide: true, value: 'the batch signature above' },
      ],
    ),
  );
  section(
    'ErrorResponse',
    'A host that cannot read a request answers with a zeroed nonce:',
    hexBlock(t.error),
    layoutTable(
      ERROR_RESPONSE_LAYOUT,
      t.error,
      {
        version: String(uintAt(t.error, ERR.version)),
        type: String(uintAt(t.error, ERR.type)),
        code: `${err.code} (${hostErrorName(err.code)})`,
        nonce: err.nonce.equals(Buffer.alloc(err.nonce.length)) ? 'zero: the request could not be read' : '',
        messageLength: String(uintAt(t.error, ERR.messageLength)),
      },
      [{ name: 'message', size: Buffer.byteLength(err.message), elide: true, value: `"${err.message}" (UTF-8)` }],
    ),
  );
  const res2 = decodeActivationResponse(t.v2.response);
  const ITEM = RESPONSE_EXTENSION_LAYOUT.at;
  section(
    'ActivationResponse (version 2)',
    `The same request in version 2 (byte 0 = 2, check ${hx(t.v2.request.subarray(ACTIVATION_REQUEST_LAYOUT.at.check.offset))}), answered alone (proof of 0 steps; the body's byte 0 is 2 too, so its leaf and signature differ from the version-1 answer's), with the host status stapled: the version-1 layout up to the signature, then the extension area's length (${hx(t.v2.response.subarray(t.v2.response.length - t.v2.item.length - 2, t.v2.response.length - t.v2.item.length))}, ${t.v2.item.length}) and its one item:`,
    hexBlock(t.v2.response),
    `Signature, Ed25519 by the host over \`"volact/kms-batch/v1\\0" ‖ SHA-256(0x00 ‖ body)\`: ${hx(res2.signature)}.`,
  );
  section(
    'Extension item',
    `The item of the answer above: the host status for the host key, signed by the root (list version ${decodeHostStatus(t.v2.status).listVersion}, next update ${iso(decodeHostStatus(t.v2.status).nextUpdate)}):`,
    hexBlock(t.v2.item),
    layoutTable(
      RESPONSE_EXTENSION_LAYOUT,
      t.v2.item,
      {
        itemType: `${uintAt(t.v2.item, ITEM.itemType)} (host status)`,
        itemLength: String(uintAt(t.v2.item, ITEM.itemLength)),
      },
      [
        {
          name: 'value',
          size: res2.extensions.hostStatus?.length ?? 0,
          elide: true,
          value: 'the host status ([Trust records](protocol.md#trust-records))',
        },
      ],
    ),
  );
  const bound = t.groupMakKey;
  const own = groupTagDerivation(v.groupId);
  const other = groupTagDerivation(v.otherGroupId);
  const tagHex = (tag: number) => `\`0x${tag.toString(16).padStart(5, '0')}\``;
  const keyBlock = (key: ProductKey) => ['```text', key.text, '```'].join('\n');
  section(
    'Product keys',
    'Symbols numbered from 0, as in [the protocol](protocol.md) ("Product keys"). A group tag is the top 20 bits of `SHA-256("volact-key-group/v1\\0" ‖ group id bytes)`, read big-endian:',
    markdownTable(
      ['group', 'SHA-256', 'tag (hex)', 'tag'],
      [own, other].map((d, i) => [
        `\`${i === 0 ? v.groupId : v.otherGroupId}\``,
        hx(d.digest),
        tagHex(d.tag),
        String(d.tag),
      ]),
    ),
    '### Group-bound MAK',
    `A MAK minted for the group \`${v.groupId}\`: payload the first 13 bytes of the seed labelled \`group mak key\`, its first 20 bits replaced by the group's tag, the last 4 bits cleared.`,
    keyBlock(bound),
    keyTable(bound, v.groupId),
    `It fits the group \`${v.groupId}\` (tag ${tagHex(own.tag)}); a client refuses it for \`${v.otherGroupId}\` (tag ${tagHex(other.tag)}) when it is installed.`,
    '### Classic MAK',
    'A MAK minted before keys named their group: payload the first 13 bytes of the seed labelled `mak key`, the last 4 bits cleared. It says no group: a client installs it and the authority judges it. The installation ID below is made with it.',
    keyBlock(t.makKey),
    keyTable(t.makKey, undefined),
  );
  section(
    'Installation ID',
    `The classic MAK above, \`${t.makKey.text}\`, on the machine whose hardware id is \`${v.hardwareId}\`, for the group above. Bytes:`,
    hexBlock(iid.bytes),
    layoutTable(
      INSTALLATION_ID_LAYOUT,
      iid.bytes,
      {
        kind: `0x${uintAt(iid.bytes, IID.kind).toString(16)} (${iid.kind === 'installation' ? 'product installation' : iid.kind})`,
        keyRef: `\`SHA-256("volact-key-ref/v1\\0" ‖ key as printed, with dashes)\`, first ${IID.keyRef.size} bytes`,
        hardwareRef: `\`SHA-256("volact-hardware-ref/v1\\0" ‖ "${v.hardwareId}")\`, first ${IID.hardwareRef.size} bytes`,
        groupsRef: `\`SHA-256("volact-groups-ref/v1\\0" ‖ group id bytes)\`, first ${IID.groupsRef.size} bytes`,
      },
      [
        {
          name: 'proof',
          size: iid.proof.length,
          value: ({ offset, size }) => `HMAC-SHA256(proofKey, bytes 0..${offset}), first ${size} bytes`,
        },
      ],
    ),
    `As typed (the ${iid.bytes.length} bytes as one big-endian number in ${iid.text.split('-').length} groups of five digits and a check digit):`,
    ['```text', iid.text, '```'].join('\n'),
  );
  section(
    'Confirmation ID',
    `The root confirms the installation ID above for the group on day ${t.confirmationId.issuedDay} (${iso(t.confirmationId.issuedDay * DAY)}); context \`installation-confirmation\`, message \`IID bytes ‖ group id ‖ issuedDay (u16)\`:`,
    ['```text', t.confirmationId.text, '```'].join('\n'),
    markdownTable(
      ['part', 'value'],
      [
        ['issuedDay', String(t.confirmationId.issuedDay)],
        ['e (challenge, 128 bits)', `\`${t.confirmationId.signature.e.toString(16).padStart(32, '0')}\``],
        ['s (scalar)', `\`${t.confirmationId.signature.s.toString(16).padStart(64, '0')}\``],
      ],
    ),
  );
  section(
    'Confirmation ID (key index 1, online key)',
    `The same installation ID, group and day, confirmed by an online key (Ed25519 from the seed label \`online key\`, public key ${hx(t.onlineKey.publicKeyRaw)}) with key index ${t.onlineConfirmationId.keyIndex}: short signature v2 (domain \`volact-short-schnorr/v2\\0\`), value \`((keyIndex · 2^16) + issuedDay) · 2^128 · L + e·L + s\`:`,
    ['```text', t.onlineConfirmationId.text, '```'].join('\n'),
    markdownTable(
      ['part', 'value'],
      [
        ['keyIndex', String(t.onlineConfirmationId.keyIndex)],
        ['issuedDay', String(t.onlineConfirmationId.issuedDay)],
        ['e (challenge, 128 bits)', `\`${t.onlineConfirmationId.signature.e.toString(16).padStart(32, '0')}\``],
        ['s (scalar)', `\`${t.onlineConfirmationId.signature.s.toString(16).padStart(64, '0')}\``],
      ],
    ),
  );
  section(
    'Host certificate (version 2, by phone)',
    `The same host key, activated by phone with the KMS host key \`${t.hostKey.text}\` (seed label \`kms host key\`), on the same day; context \`host-certificate\`:`,
    hexBlock(p2),
    layoutTable(
      HOST_CERTIFICATE_V2_LAYOUT,
      p2,
      {
        version: String(c2.version),
        groupCount: String(c2.groupIds.length),
        hostPublicKey: 'the host public key',
        keyRef: "the KMS host key's keyRef",
        issuedDay: `${c2.issuedAt / DAY} ${V2.issuedDay.unit ?? ''}`.trim(),
        validityDays: `${(c2.expiresAt - c2.issuedAt) / DAY} ${V2.validityDays.unit ?? ''}`.trim(),
        issuer: 'root fingerprint',
      },
      [
        ...groupIdRows(c2, HOST_CERTIFICATE_V2_LAYOUT),
        { name: 'signature', size: c2.signature.length, value: '`e·L + s`, big-endian' },
      ],
    ),
  );
  section(
    'Activation object',
    'Issued by the root for the group in `corp.example`, 180 days from its issue:',
    ['```json', JSON.stringify(o, null, 2), '```'].join('\n'),
    'The signed bytes are the UTF-8 of:',
    ['```text', signedObject, '```'].join('\n'),
    `(\`\\0\` is one zero byte.) The signature, base64 above, in hex: ${hx(Buffer.from(o.signature, 'base64'))}.`,
  );
  out.push(...renderTrustVectorSections());
  return out.join('\n').replace(/\n+$/, '\n');
}

/** docs/test-vectors.md as the code makes it. */
export function renderTestVectorsDoc(vectors: TestVectors = buildTestVectors()): string {
  return renderVectors(vectors);
}

const MARKER = /<!-- layout:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/layout -->/g;

/** docs/protocol.md with every `<!-- layout:ID -->…<!-- /layout -->` block rendered from the layout of that id. */
export function renderProtocolDoc(doc: string): string {
  return doc.replace(MARKER, (_all, id: string) => {
    const layout = LAYOUTS.find((l) => l.id === id);
    if (!layout) throw new Error(`docs/protocol.md names layout "${id}", which wire/layout.ts does not declare`);
    return `<!-- layout:${id} -->\n\n${renderLayoutTable(layout)}\n\n<!-- /layout -->`;
  });
}

/** The ids of the layout blocks a doc holds. */
export function layoutBlocksOf(doc: string): string[] {
  return [...doc.matchAll(MARKER)].map((m) => m[1] as string);
}

export const DOC_PATHS = {
  protocol: fileURLToPath(new URL('../../../../docs/protocol.md', import.meta.url)),
  testVectors: fileURLToPath(new URL('../../../../docs/test-vectors.md', import.meta.url)),
};

function main(): void {
  if (!process.argv.includes('--write')) {
    console.error(
      `usage: node ${process.argv[1]} --write   (rewrites docs/protocol.md tables and docs/test-vectors.md)`,
    );
    process.exitCode = 2;
    return;
  }
  const protocol = readFileSync(DOC_PATHS.protocol, 'utf8');
  writeFileSync(DOC_PATHS.protocol, renderTrustLayoutBlocks(renderProtocolDoc(protocol)));
  writeFileSync(DOC_PATHS.testVectors, renderTestVectorsDoc());
  console.log(
    `wrote ${DOC_PATHS.protocol} (${layoutBlocksOf(protocol).length} layout tables) and ${DOC_PATHS.testVectors}`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
