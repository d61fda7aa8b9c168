import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { generateSigningKeyPair } from '../crypto.js';
import { fileSigner } from '../trust/signer.js';
import { issueHostCertificate } from '../certificate.js';
import type { ProofStep } from './merkle.js';
import {
  ACTIVATION_REQUEST_SIZE,
  HostErrorCode,
  MAX_PROOF_STEPS,
  MAX_RESPONSE_SIZE,
  MessageType,
  PROTOCOL_VERSION,
  RESPONSE_BODY_SIZE,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeErrorResponse,
  encodeActivationRequest,
  encodeActivationResponse,
  encodeErrorResponse,
  encodeResponseBody,
  hostErrorName,
  messageTypeOf,
  type ActivationRequest,
  type ResponseBody,
} from './messages.js';

function malformedMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).code).toBe('FRAME_MALFORMED');
    return (err as CoreError).message;
  }
  throw new Error('expected FRAME_MALFORMED, but the payload was accepted');
}

function request(fields: Partial<ActivationRequest> = {}): ActivationRequest {
  return {
    licenceState: 2,
    groupId: randomBytes(16),
    clientId: randomBytes(16),
    nonce: randomBytes(16),
    clientTime: Date.UTC(2026, 4, 17, 8, 30),
    ...fields,
  };
}

/** Sets bytes of an encoded request and re-computes its check bytes (a well-formed sender). */
function withBytes(encoded: Buffer, changes: Record<number, number>): Buffer {
  const out = Buffer.from(encoded);
  for (const [i, v] of Object.entries(changes)) out[Number(i)] = v;
  createHash('sha256').update(out.subarray(0, 60)).digest().copy(out, 60, 0, 8);
  return out;
}

describe('ActivationRequest', () => {
  it('round-trips every field for every licence state', () => {
    for (let state = 0; state <= 5; state++) {
      for (const clientTime of [0, 1, Date.UTC(2026, 0, 1), Number.MAX_SAFE_INTEGER]) {
        const req = request({ licenceState: state, clientTime });
        const encoded = encodeActivationRequest(req);
        expect(encoded.length).toBe(ACTIVATION_REQUEST_SIZE);
        const decoded = decodeActivationRequest(encoded);
        expect(decoded.licenceState).toBe(state);
        expect(decoded.groupId).toEqual(req.groupId);
        expect(decoded.clientId).toEqual(req.clientId);
        expect(decoded.nonce).toEqual(req.nonce);
        expect(decoded.clientTime).toBe(clientTime);
      }
    }
  });

  it('is laid out as declared: version, type, state, flags 0', () => {
    const encoded = encodeActivationRequest(request({ licenceState: 3 }));
    expect([encoded[0], encoded[1], encoded[2], encoded[3]]).toEqual([
      PROTOCOL_VERSION,
      MessageType.ActivationRequest,
      3,
      0,
    ]);
    expect(messageTypeOf(encoded)).toBe(MessageType.ActivationRequest);
  });

  it('rejects every size but 68 bytes', () => {
    const encoded = encodeActivationRequest(request());
    for (let len = 0; len < ACTIVATION_REQUEST_SIZE; len++)
      malformedMessage(() => decodeActivationRequest(encoded.subarray(0, len)));
    for (const extra of [1, 2, 32, 1000]) {
      const msg = malformedMessage(() => decodeActivationRequest(Buffer.concat([encoded, Buffer.alloc(extra)])));
      expect(msg).toContain(`expected ${ACTIVATION_REQUEST_SIZE}`);
    }
  });

  it('rejects another protocol version, even with valid check bytes', () => {
    const encoded = encodeActivationRequest(request());
    for (const v of [0, 3, 255])
      expect(malformedMessage(() => decodeActivationRequest(withBytes(encoded, { 0: v })))).toContain(`version ${v}`);
  });

  it('rejects another message type, even with valid check bytes', () => {
    const encoded = encodeActivationRequest(request());
    for (const t of [0, 2, 3, 200]) {
      expect(malformedMessage(() => decodeActivationRequest(withBytes(encoded, { 1: t })))).toContain(`type ${t}`);
    }
  });

  it('rejects a licence state above 5, even with valid check bytes', () => {
    const encoded = encodeActivationRequest(request());
    for (const s of [6, 7, 128, 255])
      expect(malformedMessage(() => decodeActivationRequest(withBytes(encoded, { 2: s })))).toContain('licence state');
  });

  it('rejects non-zero reserved flags, even with valid check bytes', () => {
    const encoded = encodeActivationRequest(request());
    for (const f of [1, 2, 0x80, 0xff])
      expect(malformedMessage(() => decodeActivationRequest(withBytes(encoded, { 3: f })))).toContain('flags');
  });

  it('rejects a client time beyond 2^53, even with valid check bytes', () => {
    const encoded = encodeActivationRequest(request());
    expect(malformedMessage(() => decodeActivationRequest(withBytes(encoded, { 52: 0xff })))).toContain('time');
  });

  it('rejects a single flipped bit anywhere in the request (68 × 8 positions)', () => {
    for (let trial = 0; trial < 5; trial++) {
      const encoded = encodeActivationRequest(request({ licenceState: trial }));
      for (let bit = 0; bit < ACTIVATION_REQUEST_SIZE * 8; bit++) {
        const corrupted = Buffer.from(encoded);
        corrupted[bit >> 3] = (corrupted[bit >> 3] as number) ^ (1 << (bit & 7));
        malformedMessage(() => decodeActivationRequest(corrupted));
      }
    }
  });

  it('names the check bytes when the data was corrupted', () => {
    const corrupted = encodeActivationRequest(request());
    corrupted[30] = (corrupted[30] as number) ^ 0x10; // inside the client id
    expect(malformedMessage(() => decodeActivationRequest(corrupted))).toContain('check bytes');
  });
});

describe('ActivationResponse', () => {
  const root = generateSigningKeyPair();
  const certificate = issueHostCertificate(
    {
      hostPublicKey: generateSigningKeyPair().publicKeyRaw,
      serial: '00112233-4455-6677-8899-aabbccddeeff',
      hostKeyId: 'ffeeddcc-bbaa-9988-7766-554433221100',
      issuedAt: Date.UTC(2026, 0, 1),
      expiresAt: Date.UTC(2027, 0, 1),
      groupIds: ['0a0b0c0d-0000-4000-8000-000000000001', '0a0b0c0d-0000-4000-8000-000000000002'],
    },
    fileSigner(root),
  );
  const bodyFields: ResponseBody = {
    groupId: randomBytes(16),
    clientId: randomBytes(16),
    nonce: randomBytes(16),
    hostTime: Date.UTC(2026, 2, 3, 4, 5, 6),
    count: 4_000_000_000,
    activationIntervalMin: 120,
    renewalIntervalMin: 10_080,
  };
  const proofOf = (steps: number): ProofStep[] =>
    Array.from({ length: steps }, (_, i) => ({ siblingLeft: i % 3 === 1, sibling: randomBytes(32) }));
  const signature = randomBytes(64);

  it('encodes the body as declared', () => {
    const body = encodeResponseBody(bodyFields);
    expect(body.length).toBe(RESPONSE_BODY_SIZE);
    expect([body[0], body[1], body.readUInt16BE(2)]).toEqual([PROTOCOL_VERSION, MessageType.ActivationResponse, 0]);
    expect(body.readUInt32BE(60)).toBe(4_000_000_000);
  });

  it('round-trips with proofs of 0..10 steps (and the maximum of 16)', () => {
    for (const steps of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, MAX_PROOF_STEPS]) {
      const body = encodeResponseBody(bodyFields);
      const proof = proofOf(steps);
      const payload = encodeActivationResponse(body, certificate, proof, signature);
      expect(payload.length).toBeLessThanOrEqual(MAX_RESPONSE_SIZE);
      expect(messageTypeOf(payload)).toBe(MessageType.ActivationResponse);
      const decoded = decodeActivationResponse(payload);
      expect(decoded.body).toEqual(body);
      expect(decoded.groupId).toEqual(bodyFields.groupId);
      expect(decoded.clientId).toEqual(bodyFields.clientId);
      expect(decoded.nonce).toEqual(bodyFields.nonce);
      expect(decoded.hostTime).toBe(bodyFields.hostTime);
      expect(decoded.count).toBe(bodyFields.count);
      expect(decoded.activationIntervalMin).toBe(120);
      expect(decoded.renewalIntervalMin).toBe(10_080);
      expect(decoded.certificate).toEqual(certificate);
      expect(decoded.proof).toEqual(proof);
      expect(decoded.signature).toEqual(signature);
    }
  });

  it('with headroom, leaves that many bytes in front of the same payload (the host frames in place)', () => {
    const body = encodeResponseBody(bodyFields);
    const proof = proofOf(3);
    const plain = encodeActivationResponse(body, certificate, proof, signature);
    const roomy = encodeActivationResponse(body, certificate, proof, signature, 4);
    expect(roomy.length).toBe(plain.length + 4);
    expect(roomy.subarray(4)).toEqual(plain);
  });

  it('rejects every truncation and any extension', () => {
    for (const steps of [0, 1, 5, 10]) {
      const payload = encodeActivationResponse(encodeResponseBody(bodyFields), certificate, proofOf(steps), signature);
      for (let len = 0; len < payload.length; len++)
        malformedMessage(() => decodeActivationResponse(payload.subarray(0, len)));
      for (const extra of [1, 32, 33, 64, 500])
        malformedMessage(() => decodeActivationResponse(Buffer.concat([payload, randomBytes(extra)])));
    }
  });

  it('rejects a wrong version, type, reserved field, proof side or proof length', () => {
    const payload = encodeActivationResponse(encodeResponseBody(bodyFields), certificate, proofOf(3), signature);
    const patched = (off: number, value: number) => {
      const p = Buffer.from(payload);
      p[off] = value;
      return p;
    };
    malformedMessage(() => decodeActivationResponse(patched(0, 3)));
    malformedMessage(() => decodeActivationResponse(patched(0, 1))); // a version-1 reading has bytes left over
    malformedMessage(() => decodeActivationResponse(patched(1, MessageType.ErrorResponse)));
    malformedMessage(() => decodeActivationResponse(patched(3, 1)));
    const stepsAt = RESPONSE_BODY_SIZE + 2 + certificate.length;
    expect(payload[stepsAt]).toBe(3);
    expect(malformedMessage(() => decodeActivationResponse(patched(stepsAt + 1, 2)))).toContain('side');
    expect(malformedMessage(() => decodeActivationResponse(patched(stepsAt, MAX_PROOF_STEPS + 1)))).toContain('proof');
    expect(malformedMessage(() => decodeActivationResponse(patched(stepsAt, 4)))).toContain('expected');
  });

  it('rejects a declared certificate length beyond the certificate limit or the payload', () => {
    const payload = encodeActivationResponse(encodeResponseBody(bodyFields), certificate, [], signature);
    const big = Buffer.from(payload);
    big.writeUInt16BE(0xffff, RESPONSE_BODY_SIZE);
    expect(malformedMessage(() => decodeActivationResponse(big))).toContain('certificate');
    const long = Buffer.from(payload);
    long.writeUInt16BE(certificate.length + 100, RESPONSE_BODY_SIZE);
    malformedMessage(() => decodeActivationResponse(long));
  });

  it('refuses to encode a proof longer than the protocol allows', () => {
    expect(() =>
      encodeActivationResponse(encodeResponseBody(bodyFields), certificate, proofOf(MAX_PROOF_STEPS + 1), signature),
    ).toThrow(RangeError);
  });
});

describe('ErrorResponse', () => {
  it('round-trips code, nonce and message', () => {
    const nonce = randomBytes(16);
    const payload = encodeErrorResponse(HostErrorCode.GROUP_NOT_SERVED, nonce, 'this host does not serve group x');
    expect(messageTypeOf(payload)).toBe(MessageType.ErrorResponse);
    expect(decodeErrorResponse(payload)).toEqual({ code: 3, nonce, message: 'this host does not serve group x' });
    expect(hostErrorName(3)).toBe('GROUP_NOT_SERVED');
  });

  it('has a zero nonce when the request could not be read', () => {
    expect(decodeErrorResponse(encodeErrorResponse(HostErrorCode.MALFORMED_REQUEST, undefined, 'bad')).nonce).toEqual(
      Buffer.alloc(16),
    );
  });

  it('cuts long messages to at most 200 bytes, still decodable', () => {
    for (const message of ['x'.repeat(1000), 'é'.repeat(300), '€'.repeat(150)]) {
      const payload = encodeErrorResponse(HostErrorCode.INTERNAL, undefined, message);
      expect(payload.length).toBeLessThanOrEqual(21 + 200);
      const decoded = decodeErrorResponse(payload);
      expect(decoded.code).toBe(HostErrorCode.INTERNAL);
      expect(message.startsWith(decoded.message.replace(/\uFFFD$/, ''))).toBe(true);
    }
  });

  it('rejects a message length that does not match and a payload that is not an error', () => {
    const payload = encodeErrorResponse(HostErrorCode.INTERNAL, undefined, 'hello');
    malformedMessage(() => decodeErrorResponse(payload.subarray(0, payload.length - 1)));
    malformedMessage(() => decodeErrorResponse(Buffer.concat([payload, Buffer.from('!')])));
    malformedMessage(() => decodeErrorResponse(payload.subarray(0, 20)));
    const notError = Buffer.from(payload);
    notError[1] = MessageType.ActivationResponse;
    malformedMessage(() => decodeErrorResponse(notError));
  });

  it('names every host error code, and UNKNOWN for others', () => {
    for (const [name, code] of Object.entries(HostErrorCode)) expect(hostErrorName(code)).toBe(name);
    expect(hostErrorName(0)).toBe('UNKNOWN');
    expect(hostErrorName(999)).toBe('UNKNOWN');
  });
});

describe('messageTypeOf', () => {
  it('rejects payloads shorter than the header and other versions', () => {
    malformedMessage(() => messageTypeOf(Buffer.alloc(0)));
    malformedMessage(() => messageTypeOf(Buffer.from([1])));
    malformedMessage(() => messageTypeOf(Buffer.from([3, 1])));
    expect(messageTypeOf(Buffer.from([1, 9]))).toBe(9);
    expect(messageTypeOf(Buffer.from([2, 9]))).toBe(9);
  });
});
