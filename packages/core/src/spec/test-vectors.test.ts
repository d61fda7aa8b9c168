import { createHash } from 'node:crypto';
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
  hostKeyRefOf,
  proofKeyOf,
  rootConfirmationKeys,
  verifyInstallationConfirmation,
} from '../installation-id.js';
import { activationObjectSignatureValid, parseActivationObject } from '../activation-object.js';
import { GROUP_BOUND_CODES, KEY_ALPHABET, KEY_TYPES, keyFitsGroup, parseKey } from '../keys.js';
import { leafHash, rootFromProof } from '../wire/merkle.js';
import { decodeHostStatus, verifyHostStatus } from '../trust/revocation.js';
import {
  BATCH_CONTEXT,
  HostErrorCode,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeErrorResponse,
} from '../wire/messages.js';
import {
  ACTIVATION_REQUEST_LAYOUT,
  ERROR_RESPONSE_LAYOUT,
  HOST_CERTIFICATE_LAYOUT,
  HOST_CERTIFICATE_V2_LAYOUT,
  INSTALLATION_ID_LAYOUT,
  LAYOUTS,
  RESPONSE_BODY_LAYOUT,
  RESPONSE_EXTENSION_LAYOUT,
  type Layout,
} from '../wire/layout.js';
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

/** The text of a `## title` or `### title` section, up to the next heading of its level or above. */
function sectionOf(doc: string, heading: string): string {
  const at = doc.indexOf(`\n${heading}\n`);
  expect(at, `docs/test-vectors.md has "${heading}"`).toBeGreaterThanOrEqual(0);
  const level = heading.indexOf(' ');
  const rest = doc.slice(at + heading.length + 2);
  const next = new RegExp(`^#{1,${level}} `, 'm').exec(rest);
  return rest.slice(0, next?.index ?? rest.length);
}

/** The first markdown table of a section whose header starts with `first`: its rows, cells trimmed. */
function tableOf(text: string, first: string): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${first} `));
  expect(start, `a table headed "${first}"`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** The group tag as docs/protocol.md defines it, computed here without keys.ts. */
function specGroupTag(groupId: string): number {
  return (
    createHash('sha256').update('volact-key-group/v1\0').update(guidToBytes(groupId)).digest().readUInt32BE(0) >>> 12
  );
}

/** The one product key in a fenced block of a section. */
function keyIn(text: string): string {
  const m = /```text\n([0-9A-Z]{5}(?:-[0-9A-Z]{5}){4})\n```/.exec(text);
  expect(m, 'a product key in a text block').not.toBeNull();
  return m?.[1] as string;
}

/** Each binary vector and the layout its field table follows. */
const TABLES: readonly (readonly [string, Layout])[] = [
  ['ActivationRequest', ACTIVATION_REQUEST_LAYOUT],
  ['Host certificate (version 1)', HOST_CERTIFICATE_LAYOUT],
  ['ActivationResponse', RESPONSE_BODY_LAYOUT],
  ['Extension item', RESPONSE_EXTENSION_LAYOUT],
  ['ErrorResponse', ERROR_RESPONSE_LAYOUT],
  ['Installation ID', INSTALLATION_ID_LAYOUT],
  ['Host certificate (version 2, by phone)', HOST_CERTIFICATE_V2_LAYOUT],
];

describe('docs/test-vectors.md', () => {
  const doc = readFileSync(DOC_PATHS.testVectors, 'utf8');

  it('holds a version-2 answer: the version-1 layout, then an area whose host status the root signed', () => {
    const bytes = hexUnder(doc, 'ActivationResponse (version 2)');
    const r = decodeActivationResponse(bytes);
    expect(r.protocolVersion).toBe(2);
    expect(r.body[0]).toBe(2);
    expect(r.proof).toEqual([]);
    const cert = decodeHostCertificate(r.certificate);
    expect(verifyMessage(hostPublicKeyOf(cert), Buffer.concat([BATCH_CONTEXT, leafHash(r.body)]), r.signature)).toBe(
      true,
    );
    const status = decodeHostStatus(r.extensions.hostStatus!);
    expect(verifyHostStatus(status, vectors.root.publicKeyRaw)).toBe(true);
    expect(status.hostKeyRef).toEqual(hostKeyRefOf(cert.hostPublicKey));
    expect(decodeActivationRequest(vectors.v2.request).version).toBe(2);
    expect(hexUnder(doc, 'Extension item')).toEqual(bytes.subarray(bytes.length - vectors.v2.item.length));
  });

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
    const rootKeys = rootConfirmationKeys(vectors.root.publicKeyRaw);
    expect(cid.keyIndex).toBe(0);
    expect(verifyInstallationConfirmation(iid, v.groupId, cid, rootKeys)).toBe(true);
    expect(verifyInstallationConfirmation(iid, v.clientIds[0], cid, rootKeys)).toBe(false);
    // the same installation confirmed by an online key: key index 1, short signature v2
    const onlineText =
      /```text\n([0-9-]+)\n```/.exec(doc.slice(doc.indexOf('## Confirmation ID (key index 1, online key)')))?.[1] ?? '';
    const online = parseConfirmationId(onlineText);
    expect(online.keyIndex).toBe(1);
    expect(onlineText.split('-')).toHaveLength(24);
    const onlineKeys = { forIndex: (i: number) => (i === 1 ? [vectors.onlineKey.publicKeyRaw] : []) };
    expect(verifyInstallationConfirmation(iid, v.groupId, online, onlineKeys)).toBe(true);
    expect(verifyInstallationConfirmation(iid, v.groupId, online, rootKeys)).toBe(false);
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

  it('labels every field table with the offsets and sizes wire/layout.ts declares, and they cover the bytes', () => {
    expect(TABLES.map(([, layout]) => layout.id).sort()).toEqual(LAYOUTS.map((l) => l.id).sort());
    for (const [title, layout] of TABLES) {
      const bytes = hexUnder(doc, title);
      const rows = tableOf(sectionOf(doc, `## ${title}`), 'off');
      const fixed = rows.slice(0, layout.fields.length);
      expect(
        fixed.map(([off, size, name]) => [Number(off), Number(size), name]),
        `${title}: the fixed fields of ${layout.id}`,
      ).toEqual(layout.fields.map((f) => [f.offset, f.size, `\`${f.name}\``]));
      let end = 0;
      for (const [off, size, name, hex] of rows) {
        expect(Number(off), `${title}: ${name} follows the field before it`).toBe(end);
        end += Number(size);
        if (hex !== '…')
          expect(hex, `${title}: the bytes of ${name}`).toBe(
            `\`${bytes.toString('hex').slice(2 * Number(off), 2 * end)}\``,
          );
      }
      expect(end, `${title}: the rows cover the vector`).toBe(bytes.length);
      for (const [off, , name] of rows.slice(layout.fields.length)) {
        const part = layout.variable.find((p) => `\`${p.name}\`` === name?.replace(/\[\d+\]`$/, '`'));
        expect(part, `${title}: ${name} is a part ${layout.id} declares`).toBeDefined();
        if (part && /^\d+$/.test(part.offset) && !/\[[1-9]\d*\]/.test(name as string)) {
          expect(Number(off), `${title}: ${name} where ${layout.id} puts it`).toBe(Number(part.offset));
        }
      }
    }
  });

  it('holds a group-bound MAK whose type, payload and group tag parseKey reads back', () => {
    const section = sectionOf(doc, '## Product keys');
    const tags = tableOf(section, 'group');
    for (const [group, , hex, decimal] of tags) {
      const id = (group as string).replace(/`/g, '');
      const tag = specGroupTag(id);
      expect(hex, `the tag of ${id}`).toBe(`\`0x${tag.toString(16).padStart(5, '0')}\``);
      expect(decimal).toBe(String(tag));
    }
    expect(tags.map(([g]) => g)).toEqual([`\`${v.groupId}\``, `\`${v.otherGroupId}\``]);

    const bound = sectionOf(doc, '### Group-bound MAK');
    const text = keyIn(bound);
    const key = parseKey(text);
    expect(key.text).toBe(text);
    expect(key.type).toBe('mak');
    expect(KEY_ALPHABET.indexOf(text[0] as string)).toBe(GROUP_BOUND_CODES.mak);
    expect(key.groupTag).toBe(specGroupTag(v.groupId));
    expect(keyFitsGroup(key, guidToBytes(v.groupId))).toBe(true);
    expect(keyFitsGroup(key, guidToBytes(v.otherGroupId))).toBe(false);
    // Symbols 1..4 are the tag, 5 bits each, most significant first.
    const symbols = [...text.replace(/-/g, '')].map((ch) => KEY_ALPHABET.indexOf(ch));
    expect(symbols.slice(1, 5).reduce((n, s) => n * 32 + s, 0)).toBe(key.groupTag);
    const rows = new Map(tableOf(bound, 'symbols').map((r) => [r[1], r]));
    expect(rows.get('type')?.[3]).toMatch(new RegExp(`^${GROUP_BOUND_CODES.mak} `));
    expect(rows.get('payload')?.[3]).toContain(`\`${key.payload.toString('hex')}\``);
    expect(rows.get('group tag')?.[3]).toContain(`= ${specGroupTag(v.groupId)} `);
    expect(rows.get('check (Damm, GF(32))')?.[3]).toBe(String(symbols[21]));
    expect(rows.get('check (SHA-256, 15 bits)')?.[3]).toBe(symbols.slice(22).join(', '));
    expect(key).toEqual(vectors.groupMakKey);
  });

  it('holds the classic MAK (type 3, no group) the installation ID is made with', () => {
    const classic = sectionOf(doc, '### Classic MAK');
    const text = keyIn(classic);
    const key = parseKey(text);
    expect(key.type).toBe('mak');
    expect(KEY_ALPHABET.indexOf(text[0] as string)).toBe(KEY_TYPES.mak);
    expect(key.groupTag).toBeNull();
    expect(keyFitsGroup(key, guidToBytes(v.groupId))).toBeNull();
    expect(tableOf(classic, 'symbols').map((r) => r[1])).not.toContain('group tag');
    expect(sectionOf(doc, '## Installation ID')).toContain(`\`${text}\``);
    const iid = parseInstallationId(/```text\n([0-9-]+)\n```/.exec(sectionOf(doc, '## Installation ID'))?.[1] ?? '');
    expect(installationProofValid(iid, proofKeyOf(text))).toBe(true);
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
