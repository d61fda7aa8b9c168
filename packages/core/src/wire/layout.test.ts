import { describe, expect, it } from 'vitest';
import { CoreError } from '../errors.js';
import {
  ACTIVATION_REQUEST_LAYOUT,
  ERROR_RESPONSE_LAYOUT,
  HOST_CERTIFICATE_LAYOUT,
  HOST_CERTIFICATE_V2_LAYOUT,
  INSTALLATION_ID_LAYOUT,
  LAYOUTS,
  RESPONSE_BODY_LAYOUT,
  renderLayoutTable,
  sizeOfType,
} from './layout.js';
import {
  ACTIVATION_REQUEST_SIZE,
  MAX_EXTENSION_BYTES,
  MAX_RESPONSE_SIZE,
  MAX_RESPONSE_V1_SIZE,
  RESPONSE_BODY_SIZE,
  SUPPORTED_PROTOCOL_VERSIONS,
  decodeActivationResponse,
  decodeErrorResponse,
  encodeActivationRequest,
  encodeErrorResponse,
  isSupportedProtocolVersion,
  messageTypeOf,
} from './messages.js';

const offsets = (l: { fields: readonly { name: string; offset: number }[] }) =>
  Object.fromEntries(l.fields.map((f) => [f.name, f.offset]));

describe('wire layouts', () => {
  it('place every field where the protocol of version 1 has it', () => {
    expect(offsets(ACTIVATION_REQUEST_LAYOUT)).toEqual({
      version: 0,
      type: 1,
      licenceState: 2,
      flags: 3,
      groupId: 4,
      clientId: 20,
      nonce: 36,
      clientTime: 52,
      check: 60,
    });
    expect(ACTIVATION_REQUEST_LAYOUT.size).toBe(68);
    expect(ACTIVATION_REQUEST_SIZE).toBe(68);
    expect(offsets(RESPONSE_BODY_LAYOUT)).toMatchObject({ hostTime: 52, count: 60, renewalInterval: 68 });
    expect(RESPONSE_BODY_SIZE).toBe(72);
    expect(ERROR_RESPONSE_LAYOUT.size).toBe(21);
    expect(offsets(HOST_CERTIFICATE_LAYOUT)).toMatchObject({ serial: 34, issuedAt: 66, expiresAt: 74, issuer: 82 });
    expect(HOST_CERTIFICATE_LAYOUT.size).toBe(90);
    expect(offsets(HOST_CERTIFICATE_V2_LAYOUT)).toMatchObject({ keyRef: 34, issuedDay: 42, validityDays: 44 });
    expect(HOST_CERTIFICATE_V2_LAYOUT.size).toBe(54);
    expect(INSTALLATION_ID_LAYOUT.size).toBe(21);
  });

  it('gives the largest response frame a client accepts', () => {
    // body + certLength + the largest certificate (90 + 64 groups + signature) + proof + signature
    expect(MAX_RESPONSE_V1_SIZE).toBe(72 + 2 + (90 + 16 * 64 + 64) + 1 + 16 * 33 + 64);
    expect(MAX_RESPONSE_V1_SIZE).toBe(1845);
    // version 2: + the extension area's u16 length + its largest size
    expect(MAX_RESPONSE_SIZE).toBe(1845 + 2 + 2048);
    // every known item at its maximum count fits the area
    expect(3 + 113 + 4 * (3 + 185) + 4 * (3 + 126)).toBeLessThanOrEqual(MAX_EXTENSION_BYTES);
  });

  it('reads the sizes of every type', () => {
    expect(['u8', 'u16', 'u32', 'u64', 'bytes(16)'].map((t) => sizeOfType(t as never))).toEqual([1, 2, 4, 8, 16]);
    expect(() => sizeOfType('u128' as never)).toThrow(RangeError);
  });

  it('renders each layout as a table with one row per field and variable part', () => {
    for (const layout of LAYOUTS) {
      const lines = renderLayoutTable(layout).split('\n');
      expect(lines).toHaveLength(2 + layout.fields.length + layout.variable.length);
      expect(new Set(lines.map((l) => l.length)).size, `${layout.id}: rows padded alike`).toBe(1);
    }
    expect(renderLayoutTable(ACTIVATION_REQUEST_LAYOUT)).toContain('| 52  | 8    | `clientTime`');
  });
});

describe('version dispatch', () => {
  const speaks = `expected ${SUPPORTED_PROTOCOL_VERSIONS.join(' or ')}`;
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(CoreError);
      expect((err as CoreError).code).toBe('FRAME_MALFORMED');
      return (err as CoreError).message;
    }
    throw new Error('not refused');
  };

  it('knows versions 1 and 2', () => {
    expect(SUPPORTED_PROTOCOL_VERSIONS).toEqual([1, 2]);
    expect(isSupportedProtocolVersion(1)).toBe(true);
    expect(isSupportedProtocolVersion(2)).toBe(true);
    for (const v of [0, 3, 255, undefined]) expect(isSupportedProtocolVersion(v)).toBe(false);
  });

  it('refuses an unknown version of every message, naming the versions it speaks', () => {
    const request = encodeActivationRequest({
      licenceState: 0,
      groupId: Buffer.alloc(16, 1),
      clientId: Buffer.alloc(16, 2),
      nonce: Buffer.alloc(16, 3),
      clientTime: 0,
    });
    const error = encodeErrorResponse(1, undefined, 'x');
    for (const payload of [request, error, Buffer.concat([Buffer.from([1, 2]), Buffer.alloc(200)])]) {
      const other = Buffer.from(payload);
      other[0] = 7;
      expect(refusal(() => messageTypeOf(other))).toContain('unsupported protocol version 7');
      expect(refusal(() => messageTypeOf(other))).toContain(speaks);
    }
    const errorV7 = Buffer.from(error);
    errorV7[0] = 7;
    expect(refusal(() => decodeErrorResponse(errorV7))).toContain(speaks);
    const response = Buffer.alloc(300);
    response[0] = 9;
    response[1] = 2;
    expect(refusal(() => decodeActivationResponse(response))).toContain('version 9');
  });
});
