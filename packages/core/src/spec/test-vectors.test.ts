import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DAY } from '../clock.js';
import { keyFingerprint, verifyMessage } from '../crypto.js';
import { bytesToGuid, guidToBytes } from '../ids.js';
import { decodeHostCertificate, hostPublicKeyOf, verifyHostCertificate } from '../certificate.js';
import {
  installationProofValid,
  parseConfirmationId,
  parseInstallationId,
  proofKeyOf,
  verifyInstallationConfirmation,
} from '../installation-id.js';
import { activationObjectSignatureValid, parseActivationObject } from '../activation-object.js';
import { leafHash, rootFromProof } from '../wire/merkle.js';
import {
  BATCH_CONTEXT,
  HostErrorCode,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeErrorResponse,
} from '../wire/messages.js';
import { LAYOUTS } from '../wire/layout.js';
import {
  DOCS_SCRIPT,
  DOC_PATHS,
  VECTOR_INPUTS,
  buildTestVectors,
  layoutBlocksOf,
  renderProtocolDoc,
  renderTestVectorsDoc,
} from './test-vectors.js';

const vectors = buildTestVectors();
const v = VECTOR_INPUTS;

/** The hex of the first fenced block after a `## title` heading of docs/test-vectors.md. */
function hexUnder(doc: string, title: string): Buffer {
  const at = doc.indexOf(`\n## ${title}\n`);
  expect(at, `docs/test-vectors.md has "## ${title}"`).toBeGreaterThanOrEqual(0);
  const block = /```text\n([0-9a-f\n]+)```/.exec(doc.slice(at));
  return Buffer.from((block?.[1] ?? '').replace(/\n/g, ''), 'hex');
}

describe('docs/test-vectors.md', () => {
  const doc = readFileSync(DOC_PATHS.testVectors, 'utf8');

  it('is what the code generates, byte for byte', () => {
    expect(doc === renderTestVectorsDoc(vectors), `docs/test-vectors.md is stale: run \`${DOCS_SCRIPT}\``).toBe(true);
  });

  it('generates the same bytes every time (fixed keys, times and nonces)', () => {
    expect(renderTestVectorsDoc(buildTestVectors())).toBe(renderTestVectorsDoc(vectors));
  });

  it('holds a request the host decoder reads back field by field', () => {
    const bytes = hexUnder(doc, 'ActivationRequest');
    const request = decodeActivationRequest(bytes);
    expect(request.licenceState).toBe(2);
    expect(bytesToGuid(request.groupId)).toBe(v.groupId);
    expect(bytesToGuid(request.clientId)).toBe(v.clientIds[v.answered]);
    expect(request.clientTime).toBe(v.now - 1_500);
  });

  it('holds a host certificate that verifies under the root and is valid on the stated dates', () => {
    const certificate = decodeHostCertificate(hexUnder(doc, 'Host certificate (version 1)'));
    expect(verifyHostCertificate(certificate, vectors.root.publicKey)).toBe(true);
    expect(certificate.serial).toBe(v.certificateSerial);
    expect(certificate.issuedAt).toBe(v.certificateIssuedAt);
    expect(certificate.expiresAt).toBe(v.certificateIssuedAt + v.certificateDays * DAY);
    expect(certificate.issuer.equals(keyFingerprint(vectors.root.publicKeyRaw))).toBe(true);
    expect(certificate.groupIds).toEqual([v.groupId]);
  });

  it('holds a response whose proof of two steps (one each side) reaches the root the host signed', () => {
    const response = decodeActivationResponse(hexUnder(doc, 'ActivationResponse'));
    expect(response.proof.map((s) => s.siblingLeft)).toEqual([false, true]);
    const root = rootFromProof(leafHash(response.body), response.proof);
    expect(root.equals(vectors.batch.root)).toBe(true);
    const certificate = decodeHostCertificate(response.certificate);
    expect(verifyHostCertificate(certificate, vectors.root.publicKey)).toBe(true);
    expect(verifyMessage(hostPublicKeyOf(certificate), Buffer.concat([BATCH_CONTEXT, root]), response.signature)).toBe(
      true,
    );
    expect(response.nonce.equals(decodeActivationRequest(hexUnder(doc, 'ActivationRequest')).nonce)).toBe(true);
    expect(response.hostTime).toBe(v.now);
    expect(response.hostTime >= certificate.issuedAt && response.hostTime < certificate.expiresAt).toBe(true);
    expect(leafHash(response.body).equals(vectors.batch.leaves[v.answered] as Buffer)).toBe(true);
  });

  it('holds an error response with a zeroed nonce', () => {
    const error = decodeErrorResponse(hexUnder(doc, 'ErrorResponse'));
    expect(error.code).toBe(HostErrorCode.MALFORMED_REQUEST);
    expect(error.nonce.equals(Buffer.alloc(16))).toBe(true);
  });

  it('holds an installation ID and a confirmation ID that parse from their digits and verify', () => {
    const iidText = /```text\n([0-9-]+)\n```/.exec(doc.slice(doc.indexOf('## Installation ID')))?.[1] ?? '';
    const iid = parseInstallationId(iidText);
    expect(iid.bytes.equals(hexUnder(doc, 'Installation ID'))).toBe(true);
    expect(iid.kind).toBe('installation');
    expect(installationProofValid(iid, proofKeyOf(vectors.makKey))).toBe(true);
    const cidText = /```text\n([0-9-]+)\n```/.exec(doc.slice(doc.indexOf('## Confirmation ID')))?.[1] ?? '';
    const cid = parseConfirmationId(cidText);
    expect(verifyInstallationConfirmation(iid, v.groupId, cid, vectors.root.publicKeyRaw)).toBe(true);
    expect(verifyInstallationConfirmation(iid, v.clientIds[0], cid, vectors.root.publicKeyRaw)).toBe(false);
  });

  it('holds a phone-made host certificate that verifies under the root', () => {
    const certificate = decodeHostCertificate(hexUnder(doc, 'Host certificate (version 2, by phone)'));
    expect(certificate.version).toBe(2);
    expect(verifyHostCertificate(certificate, vectors.root.publicKey)).toBe(true);
    expect(certificate.hostPublicKey.equals(vectors.host.publicKeyRaw)).toBe(true);
  });

  it('holds an activation object that parses and verifies', () => {
    const at = doc.indexOf('## Activation object');
    const json = /```json\n([\s\S]+?)\n```/.exec(doc.slice(at))?.[1] ?? '';
    const object = parseActivationObject(json);
    expect(activationObjectSignatureValid(object, vectors.root.publicKey)).toBe(true);
    expect(object).toMatchObject({ domain: v.domain, group: { id: v.groupId } });
  });

  it('writes a GUID in the order of its bytes (not mixed-endian)', () => {
    expect(guidToBytes(v.groupId).toString('hex')).toBe('00112233445566778899aabbccddeeff');
  });
});

describe('docs/protocol.md layout tables', () => {
  const doc = readFileSync(DOC_PATHS.protocol, 'utf8');

  it('has a table for every declared layout', () => {
    expect(layoutBlocksOf(doc).sort()).toEqual(LAYOUTS.map((l) => l.id).sort());
  });

  it('renders each table from wire/layout.ts', () => {
    expect(doc === renderProtocolDoc(doc), `a layout table in docs/protocol.md is stale: run \`${DOCS_SCRIPT}\``).toBe(
      true,
    );
  });

  it('refuses a marker naming no layout', () => {
    expect(() => renderProtocolDoc('<!-- layout:nothing -->\n<!-- /layout -->')).toThrow(/nothing/);
  });
});
