import { hash } from 'node:crypto';
import { CoreError } from '../errors.js';
import { MAX_CERT_BYTES } from '../certificate.js';
import type { ProofStep } from './merkle.js';
import { ACTIVATION_REQUEST_LAYOUT, ERROR_RESPONSE_LAYOUT, RESPONSE_BODY_LAYOUT } from './layout.js';

/**
 * The KMS wire protocol, versions 1 and 2. Each message is one frame (see frame.ts); every
 * payload starts with [u8 version][u8 type]. Integers are big-endian; times are ms since the
 * Unix epoch as u64; intervals are minutes as u32 (as the reference protocol counts them).
 *
 * Version 2 differs from version 1 in one thing: its ActivationResponse ends with an
 * extension area (the host status, root-transition records, delegation certificates the host
 * hands out; each item is signed by a root, so the area is outside the Merkle-signed body). A
 * client sends a version-2 request to say it reads the area; the host answers in the request's
 * version, so a version-1 request gets the version-1 answer byte for byte. Errors stay version 1.
 *
 * A client sends ONE ActivationRequest and gets ONE ActivationResponse or ErrorResponse.
 * Privacy: the request carries the group, a random client machine ID, a nonce, the client's
 * time and its licence state — no user name, host name or address of the client.
 */
/** The version this side writes in requests (and bodies, unless told): 2, reads the extension area. */
export const PROTOCOL_VERSION = 2;
/** Version 1: no extension area (clients before version 2; error responses of every version). */
export const PROTOCOL_VERSION_1 = 1;
export type ProtocolVersion = 1 | 2;
export const MessageType = { ActivationRequest: 1, ActivationResponse: 2, ErrorResponse: 3 } as const;

/**
 * ActivationRequest, 68 bytes: declared in layout.ts (ACTIVATION_REQUEST_LAYOUT). The check
 * is not a MAC (GVLKs are public): it keeps a corrupted frame from being counted as a new client.
 * The offsets are read from the layout once, here: the host decodes every request with them.
 */
const REQ = ACTIVATION_REQUEST_LAYOUT.at;
export const ACTIVATION_REQUEST_SIZE = ACTIVATION_REQUEST_LAYOUT.size;
const REQ_VERSION = REQ.version.offset;
const REQ_TYPE = REQ.type.offset;
const REQ_STATE = REQ.licenceState.offset;
const REQ_FLAGS = REQ.flags.offset;
const REQ_GROUP = REQ.groupId.offset;
const REQ_GROUP_END = REQ_GROUP + REQ.groupId.size;
const REQ_CLIENT = REQ.clientId.offset;
const REQ_CLIENT_END = REQ_CLIENT + REQ.clientId.size;
const REQ_NONCE = REQ.nonce.offset;
const REQ_NONCE_END = REQ_NONCE + REQ.nonce.size;
const REQ_TIME = REQ.clientTime.offset;
const REQUEST_CHECKED = REQ.check.offset;
const REQUEST_CHECK_SIZE = REQ.check.size;
/** The largest licence state code (licence-state.ts). */
const MAX_LICENCE_STATE = 5;

function requestCheck(p: Buffer): Buffer {
  // One-shot hash: no Hash object per request on the host's hot path.
  return hash('sha256', p.subarray(0, REQUEST_CHECKED), 'buffer').subarray(0, REQUEST_CHECK_SIZE);
}

export interface ActivationRequest {
  readonly licenceState: number;
  readonly groupId: Buffer;
  readonly clientId: Buffer;
  readonly nonce: Buffer;
  readonly clientTime: number;
}

/** A request as read: with the version it was sent in (the host answers in the same version). */
export interface DecodedActivationRequest extends ActivationRequest {
  readonly version: ProtocolVersion;
}

/**
 * ActivationResponse: the signed body (RESPONSE_BODY_LAYOUT in layout.ts, 72 bytes, the Merkle
 * leaf), then u16 certLength c and c bytes of host certificate, u8 proofLength p (0..16) and
 * p × [u8 side (1 = sibling on the left)][32 sibling hash], then 64 bytes of Ed25519 signature
 * by the host over "volact/kms-batch/v1\0" || merkleRoot.
 */
const RES = RESPONSE_BODY_LAYOUT.at;
const RES_VERSION = RES.version.offset;
const RES_TYPE = RES.type.offset;
const RES_RESERVED = RES.reserved.offset;
const RES_GROUP = RES.groupId.offset;
const RES_GROUP_END = RES_GROUP + RES.groupId.size;
const RES_CLIENT = RES.clientId.offset;
const RES_CLIENT_END = RES_CLIENT + RES.clientId.size;
const RES_NONCE = RES.nonce.offset;
const RES_NONCE_END = RES_NONCE + RES.nonce.size;
const RES_TIME = RES.hostTime.offset;
const RES_COUNT = RES.count.offset;
const RES_ACTIVATION = RES.activationInterval.offset;
const RES_RENEWAL = RES.renewalInterval.offset;
export const RESPONSE_BODY_SIZE = RESPONSE_BODY_LAYOUT.size;
export const MAX_PROOF_STEPS = 16;
/** The largest version-1 ActivationResponse payload (1 845 bytes). */
export const MAX_RESPONSE_V1_SIZE = RESPONSE_BODY_SIZE + 2 + MAX_CERT_BYTES + 1 + MAX_PROOF_STEPS * 33 + 64;

/**
 * The extension area of a version-2 response: u16 length x (≤ MAX_EXTENSION_BYTES), then items
 * [u8 type][u16 length][value] filling exactly x bytes (RESPONSE_EXTENSION_LAYOUT). Known
 * items have their exact sizes and bounded counts; type 0 is malformed; an unknown type is
 * skipped by its length (a later version may add items; the area's bound holds for all).
 */
export const ExtensionItemType = { HostStatus: 1, RootTransition: 2, Delegation: 3 } as const;
/** The exact value size of each known item type (host status, transition record, delegation). */
export const EXTENSION_ITEM_SIZES: Readonly<Record<number, number>> = Object.freeze({ 1: 113, 2: 185, 3: 126 });
/** At most this many transition records and delegation certificates in one response (and 1 status). */
export const MAX_STAPLED_TRANSITIONS = 4;
export const MAX_STAPLED_DELEGATIONS = 4;
/** The largest extension area (after its u16 length): room for every known item, and for later ones. */
export const MAX_EXTENSION_BYTES = 2048;
const EXTENSION_LENGTH_SIZE = 2;
const ITEM_HEADER_SIZE = 3;

/**
 * The largest ActivationResponse payload (3 895 bytes: the largest version-1 response, the
 * extension length and the largest area): a client refuses a frame declaring more.
 */
export const MAX_RESPONSE_SIZE = MAX_RESPONSE_V1_SIZE + EXTENSION_LENGTH_SIZE + MAX_EXTENSION_BYTES;
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

/**
 * What a host stapled to a version-2 response, as bytes (the caller decodes and verifies each
 * against its trust store: core/src/trust). Empty for a version-1 response.
 */
export interface ResponseExtensions {
  readonly hostStatus?: Buffer;
  readonly transitions: readonly Buffer[];
  readonly delegations: readonly Buffer[];
}

export interface ActivationResponse extends ResponseBody {
  /** The version the host answered in (the request's). */
  readonly protocolVersion: ProtocolVersion;
  readonly body: Buffer;
  readonly certificate: Buffer;
  readonly proof: ProofStep[];
  readonly signature: Buffer;
  readonly extensions: ResponseExtensions;
}

/**
 * ErrorResponse (unsigned: it can only refuse, never grant): ERROR_RESPONSE_LAYOUT in
 * layout.ts, then messageLength bytes of UTF-8 message (at most 200).
 */
const ERR = ERROR_RESPONSE_LAYOUT.at;
const ERR_HEADER = ERROR_RESPONSE_LAYOUT.size;
const ERR_NONCE = ERR.nonce.offset;
const ERR_NONCE_END = ERR_NONCE + ERR.nonce.size;
const ERR_CODE = ERR.code.offset;
const ERR_LENGTH = ERR.messageLength.offset;
export const MAX_ERROR_MESSAGE_BYTES = 200;

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

/** The tail of an ActivationResponse after its body (sizes of the variable parts' fixed pieces). */
const CERT_LENGTH_SIZE = 2;
const PROOF_COUNT_SIZE = 1;
const PROOF_STEP_SIZE = 33;
const SIBLING_SIZE = 32;
export const RESPONSE_SIGNATURE_SIZE = 64;

function encodeRequestOf(version: ProtocolVersion): (req: ActivationRequest) => Buffer {
  return (req) => encodeRequest(req, version);
}

/** Versions 1 and 2 share the request layout; only byte 0 differs. */
function encodeRequest(req: ActivationRequest, version: ProtocolVersion): Buffer {
  const out = Buffer.alloc(ACTIVATION_REQUEST_SIZE);
  out[REQ_VERSION] = version;
  out[REQ_TYPE] = MessageType.ActivationRequest;
  out[REQ_STATE] = req.licenceState;
  req.groupId.copy(out, REQ_GROUP, 0, REQ.groupId.size);
  req.clientId.copy(out, REQ_CLIENT, 0, REQ.clientId.size);
  req.nonce.copy(out, REQ_NONCE, 0, REQ.nonce.size);
  out.writeBigUInt64BE(BigInt(req.clientTime), REQ_TIME);
  requestCheck(out).copy(out, REQUEST_CHECKED);
  return out;
}

/** Strict: exact size, known type, check bytes, state in range, reserved bits zero. */
function decodeRequest(p: Buffer): DecodedActivationRequest {
  if (p[REQ_TYPE] !== MessageType.ActivationRequest)
    malformed(`message type ${p[REQ_TYPE]} is not an activation request`);
  if (p.length !== ACTIVATION_REQUEST_SIZE)
    malformed(`activation request is ${p.length} bytes, expected ${ACTIVATION_REQUEST_SIZE}`);
  if (!requestCheck(p).equals(p.subarray(REQUEST_CHECKED)))
    malformed('request check bytes do not match (corrupted frame)');
  if ((p[REQ_STATE] as number) > MAX_LICENCE_STATE)
    malformed(`licence state ${p[REQ_STATE]} is out of range 0..${MAX_LICENCE_STATE}`);
  if (p[REQ_FLAGS] !== 0) malformed('reserved flags must be zero');
  const time = p.readBigUInt64BE(REQ_TIME);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) malformed('client time out of range');
  return {
    version: p[REQ_VERSION] as ProtocolVersion,
    licenceState: p[REQ_STATE] as number,
    groupId: p.subarray(REQ_GROUP, REQ_GROUP_END),
    clientId: p.subarray(REQ_CLIENT, REQ_CLIENT_END),
    nonce: p.subarray(REQ_NONCE, REQ_NONCE_END),
    clientTime: Number(time),
  };
}

function encodeResponseBodyOf(version: ProtocolVersion): (b: ResponseBody) => Buffer {
  return (b) => encodeBody(b, version);
}

function encodeBody(b: ResponseBody, version: ProtocolVersion): Buffer {
  // Every byte is written below, so the pooled allocUnsafe is safe (one per response on the
  // host's hot path; Buffer.alloc would make a separate native allocation each time).
  const out = Buffer.allocUnsafe(RESPONSE_BODY_SIZE);
  out[RES_VERSION] = version;
  out[RES_TYPE] = MessageType.ActivationResponse;
  out.writeUInt16BE(0, RES_RESERVED);
  b.groupId.copy(out, RES_GROUP, 0, RES.groupId.size);
  b.clientId.copy(out, RES_CLIENT, 0, RES.clientId.size);
  b.nonce.copy(out, RES_NONCE, 0, RES.nonce.size);
  out.writeBigUInt64BE(BigInt(b.hostTime), RES_TIME);
  out.writeUInt32BE(b.count, RES_COUNT);
  out.writeUInt32BE(b.activationIntervalMin, RES_ACTIVATION);
  out.writeUInt32BE(b.renewalIntervalMin, RES_RENEWAL);
  return out;
}

function decodeResponseV1(p: Buffer): ActivationResponse {
  return decodeResponseOf(p, 1);
}

/** Version 2: the version-1 layout, then the extension area (u16 length, items). */
function decodeResponseV2(p: Buffer): ActivationResponse {
  return decodeResponseOf(p, 2);
}

function decodeResponseOf(p: Buffer, version: ProtocolVersion): ActivationResponse {
  if (p.length < RESPONSE_BODY_SIZE + CERT_LENGTH_SIZE + PROOF_COUNT_SIZE + RESPONSE_SIGNATURE_SIZE)
    malformed(`activation response too short (${p.length} bytes)`);
  if (p[RES_TYPE] !== MessageType.ActivationResponse)
    malformed(`message type ${p[RES_TYPE]} is not an activation response`);
  if (p.readUInt16BE(RES_RESERVED) !== 0) malformed('reserved field must be zero');
  let off = RESPONSE_BODY_SIZE;
  const certLength = p.readUInt16BE(off);
  off += CERT_LENGTH_SIZE;
  if (certLength > MAX_CERT_BYTES) malformed(`certificate of ${certLength} bytes is too large`);
  if (p.length < off + certLength + PROOF_COUNT_SIZE) malformed('response truncated inside the certificate');
  const certificate = Buffer.from(p.subarray(off, off + certLength));
  off += certLength;
  const steps = p[off] as number;
  off += PROOF_COUNT_SIZE;
  if (steps > MAX_PROOF_STEPS) malformed(`proof of ${steps} steps exceeds ${MAX_PROOF_STEPS}`);
  const signatureEnd = off + PROOF_STEP_SIZE * steps + RESPONSE_SIGNATURE_SIZE;
  let extensions: ResponseExtensions = NO_EXTENSIONS;
  if (version === 1) {
    if (p.length !== signatureEnd) malformed(`response is ${p.length} bytes, expected ${signatureEnd}`);
  } else {
    if (p.length < signatureEnd + EXTENSION_LENGTH_SIZE)
      malformed(`response is ${p.length} bytes, expected at least ${signatureEnd + EXTENSION_LENGTH_SIZE}`);
    const areaLength = p.readUInt16BE(signatureEnd);
    if (areaLength > MAX_EXTENSION_BYTES)
      malformed(`extension area of ${areaLength} bytes exceeds ${MAX_EXTENSION_BYTES}`);
    const expected = signatureEnd + EXTENSION_LENGTH_SIZE + areaLength;
    if (p.length !== expected) malformed(`response is ${p.length} bytes, expected ${expected}`);
    if (areaLength > 0) extensions = decodeResponseExtensions(p.subarray(signatureEnd + EXTENSION_LENGTH_SIZE));
  }
  const proof: ProofStep[] = [];
  for (let i = 0; i < steps; i++) {
    const side = p[off] as number;
    if (side > 1) malformed('proof side must be 0 or 1');
    proof.push({ siblingLeft: side === 1, sibling: Buffer.from(p.subarray(off + 1, off + 1 + SIBLING_SIZE)) });
    off += PROOF_STEP_SIZE;
  }
  const body = Buffer.from(p.subarray(0, RESPONSE_BODY_SIZE));
  return {
    protocolVersion: version,
    body,
    groupId: body.subarray(RES_GROUP, RES_GROUP_END),
    clientId: body.subarray(RES_CLIENT, RES_CLIENT_END),
    nonce: body.subarray(RES_NONCE, RES_NONCE_END),
    hostTime: Number(body.readBigUInt64BE(RES_TIME)),
    count: body.readUInt32BE(RES_COUNT),
    activationIntervalMin: body.readUInt32BE(RES_ACTIVATION),
    renewalIntervalMin: body.readUInt32BE(RES_RENEWAL),
    certificate,
    proof,
    signature: Buffer.from(p.subarray(off, off + RESPONSE_SIGNATURE_SIZE)),
    extensions,
  };
}

const NO_EXTENSIONS: ResponseExtensions = Object.freeze({
  transitions: Object.freeze([]),
  delegations: Object.freeze([]),
});

/**
 * Reads the items of an extension area (the bytes after its u16 length). Strict: each item's
 * header and value inside the area, the items filling it exactly, known types at their exact
 * size and within their counts (1 host status, MAX_STAPLED_TRANSITIONS, MAX_STAPLED_DELEGATIONS),
 * type 0 refused; an unknown type is skipped. Values are copied (they outlive the frame).
 * FRAME_MALFORMED otherwise.
 */
export function decodeResponseExtensions(area: Uint8Array): ResponseExtensions {
  if (area.length > MAX_EXTENSION_BYTES)
    malformed(`extension area of ${area.length} bytes exceeds ${MAX_EXTENSION_BYTES}`);
  const a = Buffer.from(area.buffer, area.byteOffset, area.length);
  let hostStatus: Buffer | undefined;
  const transitions: Buffer[] = [];
  const delegations: Buffer[] = [];
  let off = 0;
  while (off < a.length) {
    if (a.length - off < ITEM_HEADER_SIZE) malformed(`extension item header truncated at byte ${off} of the area`);
    const type = a[off] as number;
    const length = a.readUInt16BE(off + 1);
    off += ITEM_HEADER_SIZE;
    if (length > a.length - off)
      malformed(`extension item of type ${type} declares ${length} bytes; ${a.length - off} left`);
    if (type === 0) malformed('extension item type 0 is reserved');
    const size = EXTENSION_ITEM_SIZES[type];
    if (size !== undefined && length !== size)
      malformed(`extension item of type ${type} is ${length} bytes, expected ${size}`);
    const value = Buffer.from(a.subarray(off, off + length));
    off += length;
    if (type === ExtensionItemType.HostStatus) {
      if (hostStatus) malformed('more than one host status in the extension area');
      hostStatus = value;
    } else if (type === ExtensionItemType.RootTransition) {
      if (transitions.length >= MAX_STAPLED_TRANSITIONS)
        malformed(`more than ${MAX_STAPLED_TRANSITIONS} root-transition records in the extension area`);
      transitions.push(value);
    } else if (type === ExtensionItemType.Delegation) {
      if (delegations.length >= MAX_STAPLED_DELEGATIONS)
        malformed(`more than ${MAX_STAPLED_DELEGATIONS} delegation certificates in the extension area`);
      delegations.push(value);
    }
    // Any other type: a later version's item, skipped.
  }
  return hostStatus ? { hostStatus, transitions, delegations } : { transitions, delegations };
}

/**
 * The extension area as a version-2 response carries it: u16 length, then the host status,
 * the transition records and the delegation certificates (in that order). The host encodes it
 * once per change and appends the same bytes to every version-2 answer. RangeError when an item
 * has the wrong size or there are too many.
 */
export function encodeResponseExtensions(e: ResponseExtensions): Buffer {
  const items: [number, Uint8Array][] = [];
  if (e.hostStatus) items.push([ExtensionItemType.HostStatus, e.hostStatus]);
  if (e.transitions.length > MAX_STAPLED_TRANSITIONS)
    throw new RangeError(`at most ${MAX_STAPLED_TRANSITIONS} transition records`);
  if (e.delegations.length > MAX_STAPLED_DELEGATIONS)
    throw new RangeError(`at most ${MAX_STAPLED_DELEGATIONS} delegation certificates`);
  for (const t of e.transitions) items.push([ExtensionItemType.RootTransition, t]);
  for (const d of e.delegations) items.push([ExtensionItemType.Delegation, d]);
  let length = 0;
  for (const [type, value] of items) {
    if (value.length !== EXTENSION_ITEM_SIZES[type])
      throw new RangeError(
        `extension item of type ${type} must be ${EXTENSION_ITEM_SIZES[type]} bytes, not ${value.length}`,
      );
    length += ITEM_HEADER_SIZE + value.length;
  }
  const out = Buffer.alloc(EXTENSION_LENGTH_SIZE + length);
  out.writeUInt16BE(length, 0);
  let off = EXTENSION_LENGTH_SIZE;
  for (const [type, value] of items) {
    out[off] = type;
    out.writeUInt16BE(value.length, off + 1);
    out.set(value, off + ITEM_HEADER_SIZE);
    off += ITEM_HEADER_SIZE + value.length;
  }
  return out;
}

/** The extension area with no item (a host with nothing to hand out; a phone-certified host). */
export const EMPTY_EXTENSION_AREA: Buffer = encodeResponseExtensions(NO_EXTENSIONS);

function encodeErrorV1(code: number, nonce: Buffer | undefined, message: string): Buffer {
  // At most 200 bytes, cut at a character boundary so the text stays valid UTF-8.
  let text = message.slice(0, MAX_ERROR_MESSAGE_BYTES);
  while (Buffer.byteLength(text) > MAX_ERROR_MESSAGE_BYTES) text = text.slice(0, -1);
  const msg = Buffer.from(text);
  const out = Buffer.alloc(ERR_HEADER + msg.length); // zeroed: the nonce stays zero without one
  out[ERR.version.offset] = 1;
  out[ERR.type.offset] = MessageType.ErrorResponse;
  out.writeUInt16BE(code, ERR_CODE);
  if (nonce) nonce.copy(out, ERR_NONCE, 0, ERR.nonce.size);
  out[ERR_LENGTH] = msg.length;
  msg.copy(out, ERR_HEADER);
  return out;
}

function decodeErrorV1(p: Buffer): ErrorResponse {
  if (p.length < ERR_HEADER) malformed('error response too short');
  if (p[ERR.type.offset] !== MessageType.ErrorResponse) malformed('not an error response');
  const len = p[ERR_LENGTH] as number;
  if (p.length !== ERR_HEADER + len) malformed('error response length does not match its message length');
  return {
    code: p.readUInt16BE(ERR_CODE),
    nonce: Buffer.from(p.subarray(ERR_NONCE, ERR_NONCE_END)),
    message: p.subarray(ERR_HEADER).toString('utf8'),
  };
}

/** What one protocol version's messages are made and read with. */
interface ProtocolCodec {
  readonly encodeRequest: (req: ActivationRequest) => Buffer;
  readonly decodeRequest: (p: Buffer) => DecodedActivationRequest;
  readonly encodeResponseBody: (b: ResponseBody) => Buffer;
  readonly decodeResponse: (p: Buffer) => ActivationResponse;
  readonly encodeError: (code: number, nonce: Buffer | undefined, message: string) => Buffer;
  readonly decodeError: (p: Buffer) => ErrorResponse;
}

/**
 * Version dispatch: byte 0 of every payload picks the codec. A version missing here is refused
 * as FRAME_MALFORMED naming the versions this side speaks (a host answers it with
 * UNSUPPORTED_VERSION). A new version is one more entry.
 */
const CODECS: ReadonlyMap<number, ProtocolCodec> = new Map([
  [
    PROTOCOL_VERSION_1,
    {
      encodeRequest: encodeRequestOf(1),
      decodeRequest: decodeRequest,
      encodeResponseBody: encodeResponseBodyOf(1),
      decodeResponse: decodeResponseV1,
      encodeError: encodeErrorV1,
      decodeError: decodeErrorV1,
    },
  ],
  [
    PROTOCOL_VERSION,
    {
      encodeRequest: encodeRequestOf(2),
      decodeRequest: decodeRequest,
      encodeResponseBody: encodeResponseBodyOf(2),
      decodeResponse: decodeResponseV2,
      // Errors keep the version-1 layout and byte (a refusal carries nothing to extend).
      encodeError: encodeErrorV1,
      decodeError: decodeErrorV1,
    },
  ],
]);

/** The protocol versions this side can read, lowest first. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [...CODECS.keys()].sort((a, b) => a - b);

export function isSupportedProtocolVersion(version: number | undefined): boolean {
  return version !== undefined && CODECS.has(version);
}

// The version this side writes unless told otherwise.
const CURRENT = CODECS.get(PROTOCOL_VERSION) as ProtocolCodec;
const codecFor = (version: ProtocolVersion): ProtocolCodec => CODECS.get(version) as ProtocolCodec;

/** The codec of a payload's version; refuses an unknown version or a payload without a header. */
function codecOf(p: Buffer): ProtocolCodec {
  if (p.length < 2) malformed('payload shorter than its header');
  const codec = CODECS.get(p[0] as number);
  if (codec === undefined) {
    malformed(
      `unsupported protocol version ${p[0]}; expected ${SUPPORTED_PROTOCOL_VERSIONS.join(' or ')} (byte 0 of the payload)`,
    );
  }
  return codec;
}

/** A request in `version` (default 2: the client reads the extension area; 1 for a host that only speaks 1). */
export function encodeActivationRequest(req: ActivationRequest, version: ProtocolVersion = PROTOCOL_VERSION): Buffer {
  return codecFor(version).encodeRequest(req);
}

/** Strict: exact size, known version and type, check bytes, state in range, reserved bits zero. */
export function decodeActivationRequest(p: Buffer): DecodedActivationRequest {
  return codecOf(p).decodeRequest(p);
}

/** The signed body in `version` (the host answers in the request's version). */
export function encodeResponseBody(b: ResponseBody, version: ProtocolVersion = PROTOCOL_VERSION): Buffer {
  return version === PROTOCOL_VERSION ? CURRENT.encodeResponseBody(b) : codecFor(version).encodeResponseBody(b);
}

/**
 * Appends certificate, proof and signature to a body: the whole response payload. With
 * `headroom`, that many bytes are left free in front (the host writes its frame header there
 * instead of copying the payload into a frame). After a version-2 body, `extensions` (an area
 * from encodeResponseExtensions, length included; the empty area when absent) ends the
 * payload; a version-1 body gets none, whatever is given (the version-1 answer, byte for byte).
 */
export function encodeActivationResponse(
  body: Buffer,
  certificate: Buffer,
  proof: readonly ProofStep[],
  signature: Buffer,
  headroom = 0,
  extensions: Buffer = EMPTY_EXTENSION_AREA,
): Buffer {
  if (proof.length > MAX_PROOF_STEPS) throw new RangeError('proof too long');
  const area = body[RES_VERSION] === PROTOCOL_VERSION_1 ? undefined : extensions;
  const signatureEnd =
    headroom +
    RESPONSE_BODY_SIZE +
    CERT_LENGTH_SIZE +
    certificate.length +
    PROOF_COUNT_SIZE +
    PROOF_STEP_SIZE * proof.length +
    RESPONSE_SIGNATURE_SIZE;
  const out = Buffer.allocUnsafe(signatureEnd + (area ? area.length : 0));
  if (area) area.copy(out, signatureEnd);
  body.copy(out, headroom);
  let off = headroom + RESPONSE_BODY_SIZE;
  out.writeUInt16BE(certificate.length, off);
  off += CERT_LENGTH_SIZE;
  certificate.copy(out, off);
  off += certificate.length;
  out[off++] = proof.length;
  for (const step of proof) {
    out[off++] = step.siblingLeft ? 1 : 0;
    step.sibling.copy(out, off);
    off += SIBLING_SIZE;
  }
  signature.copy(out, off);
  return out;
}

export function decodeActivationResponse(p: Buffer): ActivationResponse {
  if (p.length < 2) malformed(`activation response too short (${p.length} bytes)`);
  return codecOf(p).decodeResponse(p);
}

export function encodeErrorResponse(code: number, nonce: Buffer | undefined, message: string): Buffer {
  return CURRENT.encodeError(code, nonce, message);
}

export function decodeErrorResponse(p: Buffer): ErrorResponse {
  if (p.length < ERR_HEADER) malformed('error response too short');
  return codecOf(p).decodeError(p);
}

/** Type of a payload without decoding it (after checking the version). */
export function messageTypeOf(p: Buffer): number {
  codecOf(p);
  return p[1] as number;
}

export function hostErrorName(code: number): HostErrorName | 'UNKNOWN' {
  for (const [name, value] of Object.entries(HostErrorCode)) if (value === code) return name as HostErrorName;
  return 'UNKNOWN';
}
