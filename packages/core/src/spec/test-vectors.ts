/**
 * The normative test vectors (docs/test-vectors.md) and the layout tables of docs/protocol.md,
 * generated from the code: fixed keys (Ed25519 private keys from fixed seeds), fixed times,
 * fixed nonces. Ed25519 and the short signatures are deterministic, so the same code always
 * writes the same bytes; test-vectors.test.ts regenerates both documents and compares them
 * with the files, and decodes and verifies every vector with the real decoders.
 *
 * A documentation tool, not part of core's public API. `npm run docs:vectors` rewrites the
 * two files (this module run with --write).
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DAY } from '../clock.js';
import { keyFingerprint, rawPublicKey, signMessage } from '../crypto.js';
import { guidToBytes } from '../ids.js';
import { makeKey, type ProductKey } from '../keys.js';
import { licenceStateCode } from '../licence-state.js';
import { buildPhoneCertificate, issueHostCertificate, signPhoneCertificate } from '../certificate.js';
import {
  confirmInstallation,
  dayOf,
  makeInstallationId,
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
  encodeActivationRequest,
  encodeActivationResponse,
  encodeErrorResponse,
  encodeResponseBody,
  type ActivationRequest,
  type ResponseBody,
} from '../wire/messages.js';
import { LAYOUTS, markdownTable, renderLayoutTable } from '../wire/layout.js';

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
  readonly error: Buffer;
  readonly makKey: ProductKey;
  readonly hostKey: ProductKey;
  readonly installationId: InstallationId;
  readonly confirmationId: ConfirmationId;
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
  const request = { fields: requestFields, bytes: encodeActivationRequest(requestFields) };

  const certificate = issueHostCertificate(
    {
      hostPublicKey: host.publicKeyRaw,
      serial: v.certificateSerial,
      hostKeyId: v.hostKeyId,
      issuedAt: v.certificateIssuedAt,
      expiresAt: v.certificateIssuedAt + v.certificateDays * DAY,
      groupIds: [v.groupId],
    },
    root,
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
  const bodies = bodiesFields.map(encodeResponseBody);
  const leaves = bodies.map(leafHash);
  const tree = merkleTree(leaves);
  const signature = signMessage(host.privateKey, Buffer.concat([BATCH_CONTEXT, tree.root]));
  const proof = tree.proofs[v.answered] as ProofStep[];
  const response = {
    fields: bodiesFields[v.answered] as ResponseBody,
    bytes: encodeActivationResponse(bodies[v.answered] as Buffer, certificate, proof, signature),
  };

  const error = encodeErrorResponse(HostErrorCode.MALFORMED_REQUEST, undefined, 'request check bytes do not match');

  const shortKey = shortSigningKey(root.privateKey);
  const issuedDay = dayOf(v.now);
  const makKey = makeKey('mak', vectorSeed('mak key').subarray(0, 13));
  const installationId = makeInstallationId({
    kind: 'installation',
    key: makKey,
    hardwareId: v.hardwareId,
    groupIds: [v.groupId],
  });
  const confirmationId = confirmInstallation(installationId, v.groupId, issuedDay, shortKey);

  const hostKey = makeKey('kms-host', vectorSeed('kms host key').subarray(0, 13));
  const phoneFields = {
    keyRef: keyRefOf(hostKey),
    issuedDay,
    validityDays: 365,
    groupIds: [v.groupId],
  };
  const phoneSignature = signPhoneCertificate(
    { ...phoneFields, hostKeyRef: hostKeyRefOf(host.publicKeyRaw) },
    shortKey,
  );
  const phoneCertificate = buildPhoneCertificate(
    { ...phoneFields, hostPublicKey: host.publicKeyRaw, rootPublicKeyRaw: root.publicKeyRaw },
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
    root,
  );

  return {
    root,
    host,
    request,
    certificate,
    batch: { bodies, leaves, root: tree.root, proof, signature },
    response,
    error,
    makKey,
    hostKey,
    installationId,
    confirmationId,
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

function fieldTable(rows: readonly (readonly [string, string, string, string])[]): string {
  return markdownTable(
    ['off', 'field', 'bytes (hex)', 'value'],
    rows.map(([off, name, bytes, value]) => [off, `\`${name}\``, bytes, value]),
  );
}

function slice(b: Buffer, from: number, to: number): string {
  return hx(b.subarray(from, to));
}

function certificateRows(c: Buffer): [string, string, string, string][] {
  const n = c[1] as number;
  const sigAt = 90 + 16 * n;
  return [
    ['0', 'version', slice(c, 0, 1), '1'],
    ['1', 'groupCount', slice(c, 1, 2), String(n)],
    ['2', 'hostPublicKey', slice(c, 2, 34), 'the host public key below'],
    ['34', 'serial', slice(c, 34, 50), VECTOR_INPUTS.certificateSerial],
    ['50', 'hostKeyId', slice(c, 50, 66), VECTOR_INPUTS.hostKeyId],
    ['66', 'issuedAt', slice(c, 66, 74), `${c.readBigUInt64BE(66)} = ${iso(Number(c.readBigUInt64BE(66)))}`],
    ['74', 'expiresAt', slice(c, 74, 82), `${c.readBigUInt64BE(74)} = ${iso(Number(c.readBigUInt64BE(74)))}`],
    ['82', 'issuer', slice(c, 82, 90), 'SHA-256(root public key), first 8 bytes'],
    ['90', 'groupIds[0]', slice(c, 90, 106), VECTOR_INPUTS.groupId],
    [String(sigAt), 'signature', slice(c, sigAt, sigAt + 64), 'Ed25519 by the root'],
  ];
}

function renderVectors(t: TestVectors): string {
  const v = VECTOR_INPUTS;
  const r = t.request.bytes;
  const resp = t.response.bytes;
  const certEnd = 74 + t.certificate.length;
  const iid = t.installationId;
  const p2 = t.phoneCertificate;
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
    fieldTable([
      ['0', 'version', slice(r, 0, 1), '1'],
      ['1', 'type', slice(r, 1, 2), '1'],
      ['2', 'licenceState', slice(r, 2, 3), '2 (initial-grace)'],
      ['3', 'flags', slice(r, 3, 4), '0'],
      ['4', 'groupId', slice(r, 4, 20), v.groupId],
      ['20', 'clientId', slice(r, 20, 36), v.clientIds[v.answered]],
      ['36', 'nonce', slice(r, 36, 52), ''],
      ['52', 'clientTime', slice(r, 52, 60), `${t.request.fields.clientTime} = ${iso(t.request.fields.clientTime)}`],
      ['60', 'check', slice(r, 60, 68), 'SHA-256(bytes 0..60), first 8 bytes'],
    ]),
    'On the wire, the frame is the length `00000044` (68) followed by these bytes.',
  );
  section(
    'Host certificate (version 1)',
    `Issued by the root for the host key, valid from ${iso(v.certificateIssuedAt)} (inclusive) to ${iso(v.certificateIssuedAt + v.certificateDays * DAY)} (exclusive):`,
    hexBlock(t.certificate),
    fieldTable(certificateRows(t.certificate)),
    'The signature is Ed25519 by the root over `"volact/host-cert/v1\\0" ‖ bytes 0..106`.',
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
    fieldTable([
      ['0', 'version', slice(resp, 0, 1), '1'],
      ['1', 'type', slice(resp, 1, 2), '2'],
      ['2', 'reserved', slice(resp, 2, 4), '0'],
      ['4', 'groupId', slice(resp, 4, 20), v.groupId],
      ['20', 'clientId', slice(resp, 20, 36), v.clientIds[v.answered]],
      ['36', 'nonce', slice(resp, 36, 52), "the request's"],
      ['52', 'hostTime', slice(resp, 52, 60), `${v.now} = ${iso(v.now)}`],
      ['60', 'count', slice(resp, 60, 64), String(t.response.fields.count)],
      ['64', 'activationInterval', slice(resp, 64, 68), `${v.activationIntervalMin} minutes`],
      ['68', 'renewalInterval', slice(resp, 68, 72), `${v.renewalIntervalMin} minutes`],
      ['72', 'certLength', slice(resp, 72, 74), String(t.certificate.length)],
      ['74', 'certificate', '…', 'the host certificate above'],
      [String(certEnd), 'proofSteps', slice(resp, certEnd, certEnd + 1), String(t.batch.proof.length)],
      [String(certEnd + 1), 'proof', '…', 'the proof above, 33 bytes a step'],
      [String(resp.length - 64), 'signature', '…', 'the batch signature above'],
    ]),
  );
  section(
    'ErrorResponse',
    'A host that cannot read a request answers with a zeroed nonce:',
    hexBlock(t.error),
    fieldTable([
      ['0', 'version', slice(t.error, 0, 1), '1'],
      ['1', 'type', slice(t.error, 1, 2), '3'],
      ['2', 'code', slice(t.error, 2, 4), '1 (MALFORMED_REQUEST)'],
      ['4', 'nonce', slice(t.error, 4, 20), 'zero: the request could not be read'],
      ['20', 'messageLength', slice(t.error, 20, 21), String(t.error[20])],
      ['21', 'message', '…', `"${t.error.subarray(21).toString('utf8')}" (UTF-8)`],
    ]),
  );
  section(
    'Installation ID',
    `A MAK, \`${t.makKey.text}\` (payload: the first 13 bytes of the seed labelled \`mak key\`, the last 4 bits cleared), on the machine whose hardware id is \`${v.hardwareId}\`, for the group above. Bytes:`,
    hexBlock(iid.bytes),
    fieldTable([
      ['0', 'kind', slice(iid.bytes, 0, 1), '0x11 (product installation)'],
      ['1', 'keyRef', hx(iid.keyRef), '`SHA-256("volact-key-ref/v1\\0" ‖ key as printed, with dashes)`, 8 bytes'],
      [
        '9',
        'hardwareRef',
        hx(iid.hardwareRef),
        `\`SHA-256("volact-hardware-ref/v1\\0" ‖ "${v.hardwareId}")\`, 8 bytes`,
      ],
      ['17', 'groupsRef', hx(iid.groupsRef), '`SHA-256("volact-groups-ref/v1\\0" ‖ group id bytes)`, 4 bytes'],
      ['21', 'proof', hx(iid.proof), 'HMAC-SHA256(proofKey, bytes 0..21), 4 bytes'],
    ]),
    'As typed (the 25 bytes as one big-endian number in 13 groups of five digits and a check digit):',
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
    'Host certificate (version 2, by phone)',
    `The same host key, activated by phone with the KMS host key \`${t.hostKey.text}\` (seed label \`kms host key\`), on the same day; context \`host-certificate\`:`,
    hexBlock(p2),
    fieldTable([
      ['0', 'version', slice(p2, 0, 1), '2'],
      ['1', 'groupCount', slice(p2, 1, 2), '1'],
      ['2', 'hostPublicKey', slice(p2, 2, 34), 'the host public key'],
      ['34', 'keyRef', slice(p2, 34, 42), "the KMS host key's keyRef"],
      ['42', 'issuedDay', slice(p2, 42, 44), String(p2.readUInt16BE(42))],
      ['44', 'validityDays', slice(p2, 44, 46), String(p2.readUInt16BE(44))],
      ['46', 'issuer', slice(p2, 46, 54), 'root fingerprint'],
      ['54', 'groupIds[0]', slice(p2, 54, 70), v.groupId],
      ['70', 'signature', slice(p2, 70, 118), '`e·L + s`, 48 bytes big-endian'],
    ]),
  );
  section(
    'Activation object',
    'Issued by the root for the group in `corp.example`, 180 days from its issue:',
    ['```json', JSON.stringify(o, null, 2), '```'].join('\n'),
    'The signed bytes are the UTF-8 of:',
    ['```text', signedObject, '```'].join('\n'),
    `(\`\\0\` is one zero byte.) The signature, base64 above, in hex: ${hx(Buffer.from(o.signature, 'base64'))}.`,
  );
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
  writeFileSync(DOC_PATHS.protocol, renderProtocolDoc(protocol));
  writeFileSync(DOC_PATHS.testVectors, renderTestVectorsDoc());
  console.log(
    `wrote ${DOC_PATHS.protocol} (${layoutBlocksOf(protocol).length} layout tables) and ${DOC_PATHS.testVectors}`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
