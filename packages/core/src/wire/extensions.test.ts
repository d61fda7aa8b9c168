import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import { DELEGATION_BYTES, HOST_STATUS_BYTES, ROOT_TRANSITION_BYTES } from '../trust/index.js';
import type { ProofStep } from './merkle.js';
import {
  EMPTY_EXTENSION_AREA,
  EXTENSION_ITEM_SIZES,
  ExtensionItemType,
  MAX_EXTENSION_BYTES,
  MAX_RESPONSE_SIZE,
  MAX_STAPLED_DELEGATIONS,
  MAX_STAPLED_TRANSITIONS,
  MessageType,
  RESPONSE_BODY_SIZE,
  decodeActivationRequest,
  decodeActivationResponse,
  decodeResponseExtensions,
  encodeActivationRequest,
  encodeActivationResponse,
  encodeResponseBody,
  encodeResponseExtensions,
  type ResponseBody,
  type ResponseExtensions,
} from './messages.js';

function malformed(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).code).toBe('FRAME_MALFORMED');
    return (err as CoreError).message;
  }
  throw new Error('expected FRAME_MALFORMED, but it was accepted');
}

/** The wire does not read the certificate, only its length: a v1 certificate's size with one group. */
const certificate = { encoded: randomBytes(90 + 16 + 64) };
const bodyFields: ResponseBody = {
  groupId: randomBytes(16),
  clientId: randomBytes(16),
  nonce: randomBytes(16),
  hostTime: Date.UTC(2026, 2, 3),
  count: 26,
  activationIntervalMin: 120,
  renewalIntervalMin: 10_080,
};
const proof: ProofStep[] = [{ siblingLeft: true, sibling: randomBytes(32) }];
const signature = randomBytes(64);
const full: ResponseExtensions = {
  hostStatus: randomBytes(113),
  transitions: Array.from({ length: MAX_STAPLED_TRANSITIONS }, () => randomBytes(185)),
  delegations: Array.from({ length: MAX_STAPLED_DELEGATIONS }, () => randomBytes(126)),
};

/** An area (with its u16 length) holding these raw items. */
function area(items: readonly [number, Buffer][]): Buffer {
  const body = Buffer.concat(
    items.map(([type, value]) => {
      const h = Buffer.alloc(3);
      h[0] = type;
      h.writeUInt16BE(value.length, 1);
      return Buffer.concat([h, value]);
    }),
  );
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
}

describe('version 2: the extension area', () => {
  it('sizes its known items as the trust records are (host status, transition record, delegation)', () => {
    expect(EXTENSION_ITEM_SIZES[ExtensionItemType.HostStatus]).toBe(HOST_STATUS_BYTES);
    expect(EXTENSION_ITEM_SIZES[ExtensionItemType.RootTransition]).toBe(ROOT_TRANSITION_BYTES);
    expect(EXTENSION_ITEM_SIZES[ExtensionItemType.Delegation]).toBe(DELEGATION_BYTES);
  });

  it('a version-2 request is read with its version; the body answers in it', () => {
    const req = {
      licenceState: 1,
      groupId: randomBytes(16),
      clientId: randomBytes(16),
      nonce: randomBytes(16),
      clientTime: 5,
    };
    expect(decodeActivationRequest(encodeActivationRequest(req)).version).toBe(2);
    expect(decodeActivationRequest(encodeActivationRequest(req, 1)).version).toBe(1);
    // the same layout: only byte 0 (and the check bytes over it) differ
    expect(encodeActivationRequest(req, 1).subarray(1, 60)).toEqual(encodeActivationRequest(req, 2).subarray(1, 60));
    expect(encodeResponseBody(bodyFields)[0]).toBe(2);
    expect(encodeResponseBody(bodyFields, 1)[0]).toBe(1);
  });

  it('round-trips a full area (1 status, 4 transitions, 4 delegations) within MAX_RESPONSE_SIZE', () => {
    const ext = encodeResponseExtensions(full);
    const payload = encodeActivationResponse(
      encodeResponseBody(bodyFields),
      certificate.encoded,
      proof,
      signature,
      0,
      ext,
    );
    expect(payload.length).toBeLessThanOrEqual(MAX_RESPONSE_SIZE);
    const r = decodeActivationResponse(payload);
    expect(r.protocolVersion).toBe(2);
    expect(r.count).toBe(26);
    expect(r.proof).toEqual(proof);
    expect(r.signature).toEqual(signature);
    expect(r.extensions.hostStatus).toEqual(full.hostStatus);
    expect(r.extensions.transitions).toEqual(full.transitions);
    expect(r.extensions.delegations).toEqual(full.delegations);
    // the area is outside the signed body: the body is the same bytes with or without it
    const bare = decodeActivationResponse(
      encodeActivationResponse(encodeResponseBody(bodyFields), certificate.encoded, proof, signature),
    );
    expect(bare.body).toEqual(r.body);
    expect(bare.extensions).toEqual({ transitions: [], delegations: [] });
  });

  it('gives a version-1 body the version-1 response byte for byte, whatever area the host holds', () => {
    const v1Body = encodeResponseBody(bodyFields, 1);
    const plain = encodeActivationResponse(v1Body, certificate.encoded, proof, signature);
    const withArea = encodeActivationResponse(
      v1Body,
      certificate.encoded,
      proof,
      signature,
      0,
      encodeResponseExtensions(full),
    );
    expect(withArea).toEqual(plain);
    expect(plain.length).toBe(RESPONSE_BODY_SIZE + 2 + certificate.encoded.length + 1 + 33 + 64);
    const r = decodeActivationResponse(plain);
    expect(r.protocolVersion).toBe(1);
    expect(r.extensions).toEqual({ transitions: [], delegations: [] });
    // a version-2 reader does not take a version-1 answer with an area appended
    malformed(() => decodeActivationResponse(Buffer.concat([plain, EMPTY_EXTENSION_AREA])));
  });

  it('headroom works with an area (the host frames in place)', () => {
    const ext = encodeResponseExtensions(full);
    const plain = encodeActivationResponse(
      encodeResponseBody(bodyFields),
      certificate.encoded,
      proof,
      signature,
      0,
      ext,
    );
    const roomy = encodeActivationResponse(
      encodeResponseBody(bodyFields),
      certificate.encoded,
      proof,
      signature,
      4,
      ext,
    );
    expect(roomy.subarray(4)).toEqual(plain);
  });

  it('skips an unknown item type that is well formed, and keeps the known ones', () => {
    const a = area([
      [9, randomBytes(40)],
      [ExtensionItemType.HostStatus, Buffer.alloc(113, 7)],
      [200, Buffer.alloc(0)],
    ]);
    expect(decodeResponseExtensions(a.subarray(2))).toEqual({
      hostStatus: Buffer.alloc(113, 7),
      transitions: [],
      delegations: [],
    });
    const payload = encodeActivationResponse(encodeResponseBody(bodyFields), certificate.encoded, [], signature, 0, a);
    expect(decodeActivationResponse(payload).extensions.hostStatus).toEqual(Buffer.alloc(113, 7));
  });

  it('refuses items of the wrong size, too many, type 0, truncated headers and values', () => {
    const items = (list: readonly [number, Buffer][]) => area(list).subarray(2);
    expect(malformed(() => decodeResponseExtensions(items([[1, Buffer.alloc(112)]])))).toContain('expected 113');
    expect(malformed(() => decodeResponseExtensions(items([[2, Buffer.alloc(186)]])))).toContain('expected 185');
    expect(malformed(() => decodeResponseExtensions(items([[3, Buffer.alloc(125)]])))).toContain('expected 126');
    expect(malformed(() => decodeResponseExtensions(items([[0, Buffer.alloc(4)]])))).toContain('type 0');
    expect(
      malformed(() =>
        decodeResponseExtensions(
          items([
            [1, Buffer.alloc(113)],
            [1, Buffer.alloc(113)],
          ]),
        ),
      ),
    ).toContain('more than one host status');
    expect(
      malformed(() =>
        decodeResponseExtensions(items(Array.from({ length: 5 }, () => [2, Buffer.alloc(185)] as [number, Buffer]))),
      ),
    ).toContain('root-transition');
    expect(
      malformed(() =>
        decodeResponseExtensions(items(Array.from({ length: 5 }, () => [3, Buffer.alloc(126)] as [number, Buffer]))),
      ),
    ).toContain('delegation');
    const ok = items([[1, Buffer.alloc(113)]]);
    for (let len = 1; len < ok.length; len++) malformed(() => decodeResponseExtensions(ok.subarray(0, len)));
    malformed(() => decodeResponseExtensions(Buffer.alloc(MAX_EXTENSION_BYTES + 1, 9)));
  });

  it('refuses an area longer than the bound, or not filling the payload exactly', () => {
    const payload = encodeActivationResponse(
      encodeResponseBody(bodyFields),
      certificate.encoded,
      proof,
      signature,
      0,
      encodeResponseExtensions(full),
    );
    const lengthAt = payload.length - encodeResponseExtensions(full).length;
    for (let len = 0; len < payload.length; len++) malformed(() => decodeActivationResponse(payload.subarray(0, len)));
    malformed(() => decodeActivationResponse(Buffer.concat([payload, Buffer.alloc(1)])));
    const big = Buffer.from(payload);
    big.writeUInt16BE(MAX_EXTENSION_BYTES + 1, lengthAt);
    expect(malformed(() => decodeActivationResponse(big))).toContain(`exceeds ${MAX_EXTENSION_BYTES}`);
    expect(decodeActivationResponse(payload).extensions.transitions).toHaveLength(4);
    expect(payload[1]).toBe(MessageType.ActivationResponse);
  });

  it('never throws anything but FRAME_MALFORMED on a mutated area (seeded)', () => {
    const good = encodeResponseExtensions(full).subarray(2);
    let seed = 13;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(good.subarray(0, next() % (good.length + 1)));
      for (let k = next() % 4; k > 0 && m.length > 0; k--) m[next() % m.length] = next() & 0xff;
      try {
        const r = decodeResponseExtensions(m);
        expect(r.transitions.length).toBeLessThanOrEqual(MAX_STAPLED_TRANSITIONS);
        expect(r.delegations.length).toBeLessThanOrEqual(MAX_STAPLED_DELEGATIONS);
      } catch (err) {
        expect((err as CoreError).code).toBe('FRAME_MALFORMED');
      }
    }
  });

  it('the encoder refuses the wrong size or too many items', () => {
    expect(() => encodeResponseExtensions({ hostStatus: Buffer.alloc(112), transitions: [], delegations: [] })).toThrow(
      RangeError,
    );
    expect(() =>
      encodeResponseExtensions({ transitions: Array.from({ length: 5 }, () => Buffer.alloc(185)), delegations: [] }),
    ).toThrow(RangeError);
    expect(EMPTY_EXTENSION_AREA).toEqual(Buffer.from([0, 0]));
  });
});
