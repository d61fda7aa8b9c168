import { hash } from 'node:crypto';
import { CoreError } from '../errors.js';
import { MAX_CERT_BYTES } from '../certificate.js';
import type { ProofStep } from './merkle.js';

/**
 * The KMS wire protocol, version 1. Each message is one frame (see frame.ts); every payload
 * starts with [u8 version][u8 type]. Integers are big-endian; times are ms since the Unix
 * epoch as u64; intervals are minutes as u32 (as the reference protocol counts them).
 *
 * A client sends ONE ActivationRequest and gets ONE ActivationResponse or ErrorResponse.
 * Privacy: the request carries the group, a random client machine ID, a nonce, the client's
 * time and its licence state — no user name, host name or address of the client.
 */
export const PROTOCOL_VERSION = 1;
export const MessageType = { ActivationRequest: 1, ActivationResponse: 2, ErrorResponse: 3 } as const;

/**
 * ActivationRequest, 68 bytes:
 *   0  u8   version (1)
 *   1  u8   type (1)
 *   2  u8   licenceState (code, see licence-state.ts; 0..5)
 *   3  u8   flags (reserved, must be 0)
 *   4  16   groupId
 *   20 16   clientId (CMID)
 *   36 16   nonce (random per request; echoed in the signed response)
 *   52 u64  clientTime (ms)
 *   60 8    check: first 8 bytes of SHA-256 over bytes 0..60. Not a MAC (GVLKs are public):
 *           it keeps a corrupted frame from being counted as a new client.
 */
export const ACTIVATION_REQUEST_SIZE = 68;
const REQUEST_CHECKED = 60;

function requestCheck(p: Buffer): Buffer {
  // One-shot hash: no Hash object per request on the host's hot path.
  return hash('sha256', p.subarray(0, REQUEST_CHECKED), 'buffer').subarray(0, 8);
}

export interface ActivationRequest {
  readonly licenceState: number;
  readonly groupId: Buffer;
  readonly clientId: Buffer;
  readonly nonce: Buffer;
  readonly clientTime: number;
}

/**
 * ActivationResponse:
 *   body (72 bytes, the signed leaf):
 *   0  u8   version (1)
 *   1  u8   type (2)
 *   2  u16  reserved (0)
 *   4  16   groupId
 *   20 16   clientId
 *   36 16   nonce (the request's)
 *   52 u64  hostTime (ms)
 *   60 u32  count (distinct client IDs in the group's window, this client included)
 *   64 u32  activationInterval (minutes; retry interval while not activated)
 *   68 u32  renewalInterval (minutes)
 *   then
 *   72 u16  certLength c, c bytes host certificate
 *   .. u8   proofLength p (0..16), p × [u8 side (1 = sibling on the left)][32 sibling hash]
 *   .. 64   Ed25519 signature by the host over "volact/kms-batch/v1\0" || merkleRoot
 */
export const RESPONSE_BODY_SIZE = 72;
export const MAX_PROOF_STEPS = 16;
export const MAX_RESPONSE_SIZE = RESPONSE_BODY_SIZE + 2 + MAX_CERT_BYTES + 1 + MAX_PROOF_STEPS * 33 + 64;
export const BATCH_CONTEXT = Buffer.from('volact/kms-batch/v1\0');

export interface ResponseBody {
  readonly groupId: Buffer;
  readonly clientId: Buffer;
  readonly nonce: Buffer;
  readonly hostTime: number;
  readonly count: number;
  readonly activationIntervalMin: number;
  readonly renewalIntervalMin: number;
}

export interface ActivationResponse extends ResponseBody {
  readonly body: Buffer;
  readonly certificate: Buffer;
  readonly proof: ProofStep[];
  readonly signature: Buffer;
}

/**
 * ErrorResponse (unsigned: it can only refuse, never grant):
 *   0  u8   version (1)
 *   1  u8   type (3)
 *   2  u16  code (see HostErrorCode)
 *   4  16   nonce (the request's, zero when the request could not be read)
 *   20 u8   messageLength m (0..200), m bytes UTF-8 message
 */
export const HostErrorCode = {
  MALFORMED_REQUEST: 1,
  UNSUPPORTED_VERSION: 2,
  GROUP_NOT_SERVED: 3,
  HOST_NOT_ACTIVATED: 4,
  CERTIFICATE_EXPIRED: 5,
  INTERNAL: 6,
  /** The source sent more client IDs new to the window this minute than the host allows. */
  TOO_MANY_NEW_CLIENT_IDS: 7,
} as const;
export type HostErrorName = keyof typeof HostErrorCode;

export interface ErrorResponse {
  readonly code: number;
  readonly nonce: Buffer;
  readonly message: string;
}

function malformed(detail: string): never {
  throw new CoreError('FRAME_MALFORMED', detail);
}

export function encodeActivationRequest(req: ActivationRequest): Buffer {
  const out = Buffer.alloc(ACTIVATION_REQUEST_SIZE);
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.ActivationRequest;
  out[2] = req.licenceState;
  req.groupId.copy(out, 4, 0, 16);
  req.clientId.copy(out, 20, 0, 16);
  req.nonce.copy(out, 36, 0, 16);
  out.writeBigUInt64BE(BigInt(req.clientTime), 52);
  requestCheck(out).copy(out, REQUEST_CHECKED);
  return out;
}

/** Strict: exact size, known version and type, check bytes, state in range, reserved bits zero. */
export function decodeActivationRequest(p: Buffer): ActivationRequest {
  if (p.length < 2) malformed('payload shorter than its header');
  if (p[0] !== PROTOCOL_VERSION) throw new CoreError('FRAME_MALFORMED', `unsupported protocol version ${p[0]}`);
  if (p[1] !== MessageType.ActivationRequest) malformed(`message type ${p[1]} is not an activation request`);
  if (p.length !== ACTIVATION_REQUEST_SIZE)
    malformed(`activation request is ${p.length} bytes, expected ${ACTIVATION_REQUEST_SIZE}`);
  if (!requestCheck(p).equals(p.subarray(REQUEST_CHECKED)))
    malformed('request check bytes do not match (corrupted frame)');
  if ((p[2] as number) > 5) malformed(`licence state ${p[2]} is out of range 0..5`);
  if (p[3] !== 0) malformed('reserved flags must be zero');
  const time = p.readBigUInt64BE(52);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) malformed('client time out of range');
  return {
    licenceState: p[2] as number,
    groupId: p.subarray(4, 20),
    clientId: p.subarray(20, 36),
    nonce: p.subarray(36, 52),
    clientTime: Number(time),
  };
}

export function encodeResponseBody(b: ResponseBody): Buffer {
  // Every byte is written below, so the pooled allocUnsafe is safe (one per response on the
  // host's hot path; Buffer.alloc would make a separate native allocation each time).
  const out = Buffer.allocUnsafe(RESPONSE_BODY_SIZE);
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.ActivationResponse;
  out.writeUInt16BE(0, 2);
  b.groupId.copy(out, 4, 0, 16);
  b.clientId.copy(out, 20, 0, 16);
  b.nonce.copy(out, 36, 0, 16);
  out.writeBigUInt64BE(BigInt(b.hostTime), 52);
  out.writeUInt32BE(b.count, 60);
  out.writeUInt32BE(b.activationIntervalMin, 64);
  out.writeUInt32BE(b.renewalIntervalMin, 68);
  return out;
}

/**
 * Appends certificate, proof and signature to a body: the whole response payload. With
 * `headroom`, that many bytes are left free in front (the host writes its frame header there
 * instead of copying the payload into a frame).
 */
export function encodeActivationResponse(
  body: Buffer,
  certificate: Buffer,
  proof: readonly ProofStep[],
  signature: Buffer,
  headroom = 0,
): Buffer {
  if (proof.length > MAX_PROOF_STEPS) throw new RangeError('proof too long');
  const out = Buffer.allocUnsafe(headroom + RESPONSE_BODY_SIZE + 2 + certificate.length + 1 + 33 * proof.length + 64);
  body.copy(out, headroom);
  let off = headroom + RESPONSE_BODY_SIZE;
  out.writeUInt16BE(certificate.length, off);
  off += 2;
  certificate.copy(out, off);
  off += certificate.length;
  out[off++] = proof.length;
  for (const step of proof) {
    out[off++] = step.siblingLeft ? 1 : 0;
    step.sibling.copy(out, off);
    off += 32;
  }
  signature.copy(out, off);
  return out;
}

export function decodeActivationResponse(p: Buffer): ActivationResponse {
  if (p.length < RESPONSE_BODY_SIZE + 2 + 1 + 64) malformed(`activation response too short (${p.length} bytes)`);
  if (p[0] !== PROTOCOL_VERSION) malformed(`unsupported protocol version ${p[0]}`);
  if (p[1] !== MessageType.ActivationResponse) malformed(`message type ${p[1]} is not an activation response`);
  if (p.readUInt16BE(2) !== 0) malformed('reserved field must be zero');
  let off = RESPONSE_BODY_SIZE;
  const certLength = p.readUInt16BE(off);
  off += 2;
  if (certLength > MAX_CERT_BYTES) malformed(`certificate of ${certLength} bytes is too large`);
  if (p.length < off + certLength + 1) malformed('response truncated inside the certificate');
  const certificate = Buffer.from(p.subarray(off, off + certLength));
  off += certLength;
  const steps = p[off++] as number;
  if (steps > MAX_PROOF_STEPS) malformed(`proof of ${steps} steps exceeds ${MAX_PROOF_STEPS}`);
  if (p.length !== off + 33 * steps + 64) malformed(`response is ${p.length} bytes, expected ${off + 33 * steps + 64}`);
  const proof: ProofStep[] = [];
  for (let i = 0; i < steps; i++) {
    const side = p[off] as number;
    if (side > 1) malformed('proof side must be 0 or 1');
    proof.push({ siblingLeft: side === 1, sibling: Buffer.from(p.subarray(off + 1, off + 33)) });
    off += 33;
  }
  const body = Buffer.from(p.subarray(0, RESPONSE_BODY_SIZE));
  return {
    body,
    groupId: body.subarray(4, 20),
    clientId: body.subarray(20, 36),
    nonce: body.subarray(36, 52),
    hostTime: Number(body.readBigUInt64BE(52)),
    count: body.readUInt32BE(60),
    activationIntervalMin: body.readUInt32BE(64),
    renewalIntervalMin: body.readUInt32BE(68),
    certificate,
    proof,
    signature: Buffer.from(p.subarray(off, off + 64)),
  };
}

export function encodeErrorResponse(code: number, nonce: Buffer | undefined, message: string): Buffer {
  // At most 200 bytes, cut at a character boundary so the text stays valid UTF-8.
  let text = message.slice(0, 200);
  while (Buffer.byteLength(text) > 200) text = text.slice(0, -1);
  const msg = Buffer.from(text);
  const out = Buffer.alloc(21 + msg.length);
  out[0] = PROTOCOL_VERSION;
  out[1] = MessageType.ErrorResponse;
  out.writeUInt16BE(code, 2);
  if (nonce) nonce.copy(out, 4, 0, 16);
  out[20] = msg.length;
  msg.copy(out, 21);
  return out;
}

export function decodeErrorResponse(p: Buffer): ErrorResponse {
  if (p.length < 21) malformed('error response too short');
  if (p[1] !== MessageType.ErrorResponse) malformed('not an error response');
  const len = p[20] as number;
  if (p.length !== 21 + len) malformed('error response length does not match its message length');
  return { code: p.readUInt16BE(2), nonce: Buffer.from(p.subarray(4, 20)), message: p.subarray(21).toString('utf8') };
}

/** Type of a payload without decoding it (after checking the version). */
export function messageTypeOf(p: Buffer): number {
  if (p.length < 2) malformed('payload shorter than its header');
  if (p[0] !== PROTOCOL_VERSION) malformed(`unsupported protocol version ${p[0]}`);
  return p[1] as number;
}

export function hostErrorName(code: number): HostErrorName | 'UNKNOWN' {
  for (const [name, value] of Object.entries(HostErrorCode)) if (value === code) return name as HostErrorName;
  return 'UNKNOWN';
}
