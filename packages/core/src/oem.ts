import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { keyFingerprint, publicKeyFromRaw, sha256, signMessage, verifyMessage } from './crypto.js';
import { bytesToGuid } from './ids.js';
import type { Signer } from './trust/signer.js';
import { hardwareRefOf } from './installation-id.js';
import {
  groupField,
  guidField,
  hardwareRefField,
  issuerField,
  labelField,
  parseSignedFile,
  publicKeyField,
  signatureField,
  signedPayload,
} from './signed-file.js';

/**
 * OEM activation (the reference: "the hardware vendor activates [the product] by associating
 * [it] with the firmware/BIOS of the computer … before the computer is sent to the customer").
 *
 * The publisher certifies a manufacturer's Ed25519 key for some product groups (an **OEM
 * certificate**, signed by the root); the manufacturer signs, at the factory, one **OEM
 * marker** per machine, bound to that machine's hardware reference, and carrying its
 * certificate. A client verifies marker → certificate → pinned root, and its own hardware,
 * with no network. The manufacturer's private key never leaves the manufacturer.
 */
export const MAX_OEM_GROUPS = 64;
export const MAX_OEM_CERTIFICATE_CHARS = 16_384;
export const MAX_OEM_MARKER_CHARS = 20_480;

export const oemCertificateSchema = z
  .object({
    format: z.literal('volact-oem-certificate/1'),
    serial: guidField,
    /** Stable per manufacturer name: re-certifying a manufacturer keeps its id. */
    manufacturerId: guidField,
    manufacturer: labelField,
    /** The manufacturer's Ed25519 public key (raw, base64). */
    publicKey: publicKeyField,
    groups: z.array(groupField).min(1).max(MAX_OEM_GROUPS),
    notBefore: z.iso.datetime(),
    notAfter: z.iso.datetime(),
    issuer: issuerField,
    signature: signatureField,
  })
  .strict();

export const oemMarkerSchema = z
  .object({
    format: z.literal('volact-oem-marker/1'),
    group: groupField,
    hardwareRef: hardwareRefField,
    /** The machine's serial number or label, as printed on it. */
    machine: labelField,
    issuedAt: z.iso.datetime(),
    certificate: oemCertificateSchema,
    signature: signatureField,
  })
  .strict();

export type OemCertificate = z.infer<typeof oemCertificateSchema>;
export type OemMarker = z.infer<typeof oemMarkerSchema>;

const CERT_CONTEXT = 'volact/oem-certificate/v1\0';
const MARKER_CONTEXT = 'volact/oem-marker/v1\0';

function certificateBytes(c: Omit<OemCertificate, 'format' | 'signature'>): Buffer {
  return signedPayload(CERT_CONTEXT, [
    c.serial,
    c.manufacturerId,
    c.manufacturer,
    c.publicKey,
    c.groups.map((g) => [g.id, g.name]),
    c.notBefore,
    c.notAfter,
    c.issuer,
  ]);
}

function markerBytes(m: Omit<OemMarker, 'format' | 'signature'>): Buffer {
  // The certificate's signature covers all of it: the marker is bound to one certificate.
  return signedPayload(MARKER_CONTEXT, [
    m.group.id,
    m.group.name,
    m.hardwareRef,
    m.machine,
    m.issuedAt,
    m.certificate.serial,
    m.certificate.signature,
  ]);
}

/** The manufacturer id a name always gets (case and spacing do not matter). */
export function manufacturerIdOf(name: string): string {
  const canonical = name.trim().replace(/\s+/g, ' ').toLowerCase();
  return bytesToGuid(sha256(Buffer.from(`volact-manufacturer/v1\0${canonical}`)).subarray(0, 16));
}

/** The authority's side: certify a manufacturer's public key for some groups. */
export function signOemCertificate(
  fields: {
    serial: string;
    manufacturer: string;
    publicKeyRaw: Buffer;
    groups: readonly { id: string; name: string }[];
    notBefore: number;
    notAfter: number;
  },
  root: Signer,
): OemCertificate {
  const body = {
    serial: fields.serial,
    manufacturerId: manufacturerIdOf(fields.manufacturer),
    manufacturer: fields.manufacturer.trim(),
    publicKey: Buffer.from(fields.publicKeyRaw).toString('base64'),
    groups: fields.groups.map((g) => ({ id: g.id, name: g.name })),
    notBefore: new Date(fields.notBefore).toISOString(),
    notAfter: new Date(fields.notAfter).toISOString(),
    issuer: keyFingerprint(root.publicKeyRaw).toString('hex'),
  };
  return oemCertificateSchema.parse({
    format: 'volact-oem-certificate/1',
    ...body,
    signature: root.sign(certificateBytes(body)).toString('base64'),
  });
}

/** The factory's side: one marker for one machine, signed with the manufacturer's private key. */
export function signOemMarker(
  fields: { group: { id: string; name: string }; hardwareId: string; machine: string; issuedAt: number },
  oemKey: KeyObject,
  certificate: OemCertificate,
): OemMarker {
  const body = {
    group: { id: fields.group.id, name: fields.group.name },
    hardwareRef: hardwareRefOf(fields.hardwareId).toString('hex'),
    machine: fields.machine,
    issuedAt: new Date(fields.issuedAt).toISOString(),
    certificate,
  };
  return oemMarkerSchema.parse({
    format: 'volact-oem-marker/1',
    ...body,
    signature: signMessage(oemKey, markerBytes(body)).toString('base64'),
  });
}

export function parseOemCertificate(text: string): OemCertificate {
  return parseSignedFile(text, oemCertificateSchema, 'OEM certificate', 'OEM_FILE_INVALID', MAX_OEM_CERTIFICATE_CHARS);
}

export function parseOemMarker(text: string): OemMarker {
  return parseSignedFile(text, oemMarkerSchema, 'OEM marker', 'OEM_FILE_INVALID', MAX_OEM_MARKER_CHARS);
}

/** True when the root signed exactly this certificate. */
export function oemCertificateSignatureValid(c: OemCertificate, rootPublicKey: KeyObject): boolean {
  return verifyMessage(rootPublicKey, certificateBytes(c), Buffer.from(c.signature, 'base64'));
}

export type OemCheckCode =
  | 'OEM_MANUFACTURER_UNTRUSTED'
  | 'OEM_MARKER_INVALID'
  | 'OEM_CERT_EXPIRED'
  | 'OEM_GROUP_MISMATCH'
  | 'OEM_HARDWARE_MISMATCH';

export type OemCheck =
  | { ok: true; manufacturer: string; machine: string; group: string }
  | { ok: false; code: OemCheckCode; message: string };

/**
 * The checks an OEM marker must pass on a machine, in order (the first failing decides):
 * the certificate is the root's, the marker the certified manufacturer's, made while the
 * certificate was valid, for a group the certificate covers and that is this product's, and
 * for this machine's hardware. No clock: an OEM licence does not expire.
 */
export function checkOemMarker(
  marker: OemMarker,
  expect: { rootPublicKey: KeyObject; groupId: string; groupName: string; hardwareId: string },
): OemCheck {
  const cert = marker.certificate;
  if (!oemCertificateSignatureValid(cert, expect.rootPublicKey)) {
    return {
      ok: false,
      code: 'OEM_MANUFACTURER_UNTRUSTED',
      message: `the OEM certificate of "${cert.manufacturer}" is not signed by this product's authority`,
    };
  }
  if (!verifyMessage(publicKeyFromRaw(Buffer.from(cert.publicKey, 'base64')), markerBytes(marker), sig(marker))) {
    return {
      ok: false,
      code: 'OEM_MARKER_INVALID',
      message: `the OEM marker of machine "${marker.machine}" is not signed by ${cert.manufacturer}'s certified key (altered, or made with another key)`,
    };
  }
  const issued = Date.parse(marker.issuedAt);
  if (issued < Date.parse(cert.notBefore) || issued > Date.parse(cert.notAfter)) {
    return {
      ok: false,
      code: 'OEM_CERT_EXPIRED',
      message: `the marker was made on ${marker.issuedAt}, outside its OEM certificate's validity (${cert.notBefore} to ${cert.notAfter})`,
    };
  }
  if (!cert.groups.some((g) => g.id === marker.group.id)) {
    return {
      ok: false,
      code: 'OEM_GROUP_MISMATCH',
      message: `${cert.manufacturer} is not certified for ${marker.group.name} (only ${cert.groups.map((g) => g.name).join(', ')})`,
    };
  }
  if (marker.group.id !== expect.groupId) {
    return {
      ok: false,
      code: 'OEM_GROUP_MISMATCH',
      message: `the OEM marker is for ${marker.group.name}, not ${expect.groupName}`,
    };
  }
  if (marker.hardwareRef !== hardwareRefOf(expect.hardwareId).toString('hex')) {
    return {
      ok: false,
      code: 'OEM_HARDWARE_MISMATCH',
      message: `the OEM marker of machine "${marker.machine}" was made for other hardware than this machine's`,
    };
  }
  return { ok: true, manufacturer: cert.manufacturer, machine: marker.machine, group: marker.group.name };
}

const sig = (m: { signature: string }) => Buffer.from(m.signature, 'base64');
