/**
 * Fuzz test of the KMS host's TCP front end: a running host on a real socket gets 10 000
 * random and mutated frames (seeded, so a failure can be replayed with VOLACT_FUZZ_SEED).
 * Nothing the fuzzer sends is a valid request for a group the host serves, so afterwards the
 * group count and the counted statistics must be exactly what they were, every answer must be
 * a well-formed ErrorResponse, and the host must still answer a valid request correctly.
 */
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACTIVATION_REQUEST_SIZE,
  BATCH_CONTEXT,
  FrameReader,
  HostErrorCode,
  MAX_RESPONSE_SIZE,
  MessageType,
  decodeActivationResponse,
  decodeErrorResponse,
  decodeHostCertificate,
  encodeActivationRequest,
  frame,
  guidToBytes,
  hostErrorName,
  hostPublicKeyOf,
  leafHash,
  messageTypeOf,
  publicKeyFromRaw,
  rootFromProof,
  verifyHostCertificate,
  verifyMessage,
} from '@volact/core';
import { hostStatus, startKmsHost, type RunningKmsHost } from './host.js';
import { MAX_REQUEST_FRAME } from './kms-server.js';
import { ask, createActivatedHost, requestPayload, type HostFixture } from './test-fixture.js';

const SEED = Number(process.env.VOLACT_FUZZ_SEED ?? 0x5eed2026) >>> 0;
const FRAMES = 10_000;
const CONCURRENCY = 16;

/** mulberry32: small, fast, seeded. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, bytes, chance: (p: number) => next() < p };
}
type Rand = ReturnType<typeof prng>;

function header(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length >>> 0);
  return b;
}

/** Re-computes a request's check bytes after a semantic change: only the decoder's other rules can refuse it. */
function rechecked(p: Buffer): Buffer {
  createHash('sha256').update(p.subarray(0, 60)).digest().copy(p, 60, 0, 8);
  return p;
}

/**
 * What the host must do with a generated frame: answer it with one ErrorResponse and read on
 * ('answered'), answer once and drop the connection because the length prefix is bad
 * ('fatal'), or either ('unknown': random bytes, a mutated length prefix).
 */
type Fate = 'answered' | 'fatal' | 'unknown';

interface Generated {
  readonly kind: string;
  readonly fate: Fate;
  readonly bytes: Buffer;
}

function fuzzFrameFactory(r: Rand, servedGroup: string, otherGroups: string[]) {
  const validRequest = () =>
    encodeActivationRequest({
      licenceState: r.int(6),
      groupId: guidToBytes(servedGroup),
      clientId: r.bytes(16),
      nonce: r.bytes(16),
      clientTime: Date.UTC(2026, 0, 1) + r.int(1e9),
    });
  /** XORs `count` distinct positions in [from, to) with non-zero values: the bytes really change. */
  const mutate = (b: Buffer, count: number, from = 0, to = b.length) => {
    const out = Buffer.from(b);
    const positions = new Set<number>();
    while (positions.size < Math.min(count, to - from)) positions.add(from + r.int(to - from));
    for (const pos of positions) out[pos] = (out[pos] as number) ^ (1 + r.int(255));
    return out;
  };
  const generators: [weight: number, kind: string, fate: Fate, make: () => Buffer][] = [
    [6, 'random bytes', 'unknown', () => r.bytes(1 + r.int(120))],
    [14, 'request with mutated payload bytes', 'answered', () => frame(mutate(validRequest(), 1 + r.int(4)))],
    [
      6,
      'request with one flipped bit',
      'answered',
      () => {
        const p = validRequest();
        const bit = r.int(ACTIVATION_REQUEST_SIZE * 8);
        p[bit >> 3] = (p[bit >> 3] as number) ^ (1 << (bit & 7));
        return frame(p);
      },
    ],
    [6, 'framed request mutated anywhere (header too)', 'unknown', () => mutate(frame(validRequest()), 1 + r.int(3))],
    [
      8,
      'truncated request',
      'answered',
      () => frame(validRequest().subarray(0, 1 + r.int(ACTIVATION_REQUEST_SIZE - 1))),
    ],
    [
      8,
      'extended request',
      'answered',
      () => frame(Buffer.concat([validRequest(), r.bytes(1 + r.int(MAX_REQUEST_FRAME - ACTIVATION_REQUEST_SIZE))])),
    ],
    [
      4,
      'huge declared length',
      'fatal',
      () => Buffer.concat([header(MAX_REQUEST_FRAME + 1 + r.int(0xffffffff - MAX_REQUEST_FRAME)), r.bytes(r.int(200))]),
    ],
    [
      2,
      'declared length just over the limit',
      'fatal',
      () => Buffer.concat([header(MAX_REQUEST_FRAME + 1), r.bytes(r.int(MAX_REQUEST_FRAME + 2))]),
    ],
    [4, 'zero length', 'fatal', () => Buffer.concat([header(0), r.bytes(r.int(80))])],
    [8, 'request-sized garbage payload', 'answered', () => frame(r.bytes(ACTIVATION_REQUEST_SIZE))],
    [6, 'garbage payload of any allowed length', 'answered', () => frame(r.bytes(1 + r.int(MAX_REQUEST_FRAME)))],
    [
      4,
      'version 1 / type 1 header, garbage body',
      'answered',
      () => frame(Buffer.concat([Buffer.from([1, 1]), r.bytes(ACTIVATION_REQUEST_SIZE - 2)])),
    ],
    [
      4,
      'version 2 / type 1 header, garbage body',
      'answered',
      () => frame(Buffer.concat([Buffer.from([2, 1]), r.bytes(ACTIVATION_REQUEST_SIZE - 2)])),
    ],
    [
      3,
      'version 1 request mutated (check bytes of the mutation)',
      'answered',
      () => {
        const p = validRequest();
        p[0] = 1;
        const m = mutate(p, 1 + r.int(3), 1, 60);
        // a mutated group or client ID may still read as a request: keep the group unserved
        guidToBytes(otherGroups[0] as string).copy(m, 4);
        return frame(rechecked(m));
      },
    ],
    [
      4,
      'licence state above 5 (valid check bytes)',
      'answered',
      () => {
        const p = validRequest();
        p[2] = 6 + r.int(250);
        return frame(rechecked(p));
      },
    ],
    [
      4,
      'reserved flags set (valid check bytes)',
      'answered',
      () => {
        const p = validRequest();
        p[3] = 1 + r.int(255);
        return frame(rechecked(p));
      },
    ],
    [
      3,
      'other version (valid check bytes)',
      'answered',
      () => {
        const p = validRequest();
        p[0] = [0, 3, 4, 255][r.int(4)] as number;
        return frame(rechecked(p));
      },
    ],
    [
      3,
      'other message type (valid check bytes)',
      'answered',
      () => {
        const p = validRequest();
        p[1] = [0, 2, 3, 255][r.int(4)] as number;
        return frame(rechecked(p));
      },
    ],
    [
      2,
      'client time beyond 2^53 (valid check bytes)',
      'answered',
      () => {
        const p = validRequest();
        p[52] = 0x80 | r.int(128);
        return frame(rechecked(p));
      },
    ],
    [
      6,
      'valid request for a group not served',
      'answered',
      () => {
        const p = validRequest();
        const group = r.chance(0.5) ? (otherGroups[r.int(otherGroups.length)] as string) : undefined;
        (group ? guidToBytes(group) : r.bytes(16)).copy(p, 4);
        return frame(rechecked(p));
      },
    ],
  ];
  const pick = (fates: Fate[]): Generated => {
    const eligible = generators.filter(([, , fate]) => fates.includes(fate));
    let x = r.int(eligible.reduce((sum, [w]) => sum + w, 0));
    for (const [w, kind, fate, make] of eligible) {
      if (x < w) return { kind, fate, bytes: make() };
      x -= w;
    }
    throw new Error('unreachable');
  };
  return {
    /** A frame the host must answer and read past. */
    answered: () => pick(['answered']),
    /** A frame that breaks (or may break) the framing. */
    breaking: () => pick(['fatal', 'unknown']),
    /** A prefix of a valid request frame: a connection that ends inside a frame. */
    partialValid(): Buffer {
      const f = frame(validRequest());
      return f.subarray(0, 1 + r.int(f.length - 1));
    },
  };
}

interface ConnectionPlan {
  readonly writes: Buffer[];
  readonly ending: 'end' | 'end-mid-frame' | 'destroy';
  /** How many answers the host must send on this connection (max undefined: not known). */
  readonly expect: { min: number; max: number | undefined };
  /** The generated frames, by kind: shown when an expectation fails. */
  readonly kinds: string[];
}

interface ConnectionResult {
  readonly responses: Buffer[];
  readonly clientSideError?: string;
}

function runConnection(address: { host: string; port: number }, plan: ConnectionPlan): Promise<ConnectionResult> {
  return new Promise((resolve) => {
    const socket = connect(address.port, address.host);
    socket.setNoDelay(true);
    const reader = new FrameReader(MAX_RESPONSE_SIZE);
    const responses: Buffer[] = [];
    let clientSideError: string | undefined;
    socket.on('data', (chunk: Buffer) => {
      try {
        responses.push(...reader.push(chunk));
      } catch (err) {
        clientSideError = `the host sent a bad frame: ${(err as Error).message}`;
      }
    });
    socket.on('error', () => undefined); // resets after the host dropped a connection are expected
    socket.on('close', () => resolve(clientSideError ? { responses, clientSideError } : { responses }));
    socket.on('connect', () => {
      for (const w of plan.writes) {
        if (socket.destroyed) break;
        socket.write(w);
      }
      if (plan.ending === 'destroy') socket.destroy();
      else socket.end();
    });
  });
}

describe(`KMS server fuzz (seed ${SEED})`, () => {
  let fx: HostFixture;
  let host: RunningKmsHost | undefined;

  beforeAll(async () => {
    fx = await createActivatedHost();
    host = await startKmsHost({ dataDir: fx.hostDir, listen: { host: '127.0.0.1', port: 0 }, clock: fx.clock });
  });
  afterAll(async () => {
    await host?.close();
    await fx?.cleanup();
  });

  it(`survives ${FRAMES} random and mutated frames without a count changing`, { timeout: 30_000 }, async () => {
    console.log(`kms-server fuzz seed: ${SEED} (replay with VOLACT_FUZZ_SEED=${SEED})`);
    const running = host!;
    const address = running.address;
    // three clients counted before the fuzz
    const known = Array.from({ length: 3 }, (_, i) => Buffer.alloc(16, i + 1));
    for (const clientId of known) await ask(address, requestPayload(fx.group.id, { clientId }));
    const countBefore = running.counts();
    const statsBefore = running.statistics();
    expect(countBefore[0]?.count).toBe(3);

    const r = prng(SEED);
    const factory = fuzzFrameFactory(r, fx.group.id, [fx.otherGroup.id]);
    const plans: ConnectionPlan[] = [];
    const kinds = new Map<string, number>();
    let generated = 0;
    let bytes = 0;
    while (generated < FRAMES) {
      // 1..40 frames the host must answer, then maybe one that breaks the framing (and a few
      // more behind it, which the host must not read)
      const n = Math.min(FRAMES - generated, 1 + r.int(40));
      const parts: Generated[] = Array.from({ length: n }, () => factory.answered());
      let tail: Fate | undefined;
      if (generated + n < FRAMES && r.chance(0.3)) {
        const breaking = factory.breaking();
        tail = breaking.fate;
        parts.push(breaking);
        for (let i = r.int(4); i > 0 && generated + parts.length < FRAMES; i--) parts.push(factory.answered());
      }
      for (const g of parts) kinds.set(g.kind, (kinds.get(g.kind) ?? 0) + 1);
      generated += parts.length;
      const roll = r.next();
      const ending: ConnectionPlan['ending'] = roll < 0.7 ? 'end' : roll < 0.85 && !tail ? 'end-mid-frame' : 'destroy';
      let stream = Buffer.concat(parts.map((g) => g.bytes));
      if (ending === 'end-mid-frame') stream = Buffer.concat([stream, factory.partialValid()]);
      if (ending === 'destroy') stream = stream.subarray(0, 1 + r.int(stream.length)); // closed mid-write
      const expected: ConnectionPlan['expect'] =
        ending === 'destroy'
          ? { min: 0, max: undefined }
          : tail === 'fatal'
            ? { min: n + 1, max: n + 1 }
            : tail === 'unknown'
              ? { min: n, max: undefined }
              : { min: n, max: n };
      bytes += stream.length;
      // how the stream is cut into writes: one write, random chunks, or byte by byte
      const split = r.next();
      const writes: Buffer[] = [];
      if (split < 0.4) writes.push(stream);
      else if (split < 0.92 || stream.length > 400) {
        for (let off = 0; off < stream.length;) {
          const len = 1 + r.int(r.chance(0.3) ? 8 : 300);
          writes.push(stream.subarray(off, off + len));
          off += len;
        }
      } else for (let i = 0; i < stream.length; i++) writes.push(stream.subarray(i, i + 1));
      plans.push({ writes, ending, expect: expected, kinds: parts.map((g) => g.kind) });
    }

    const results: { plan: ConnectionPlan; result: ConnectionResult }[] = [];
    let nextPlan = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (nextPlan < plans.length) {
          const plan = plans[nextPlan++]!;
          results.push({ plan, result: await runConnection(address, plan) });
        }
      }),
    );

    // Every answer is a well-formed ErrorResponse; nothing was counted.
    const byCode = new Map<string, number>();
    let answers = 0;
    let exact = 0;
    for (const { plan, result } of results) {
      expect(result.clientSideError).toBeUndefined();
      // one answer per frame read; nothing after a frame that broke the framing
      const why = () =>
        JSON.stringify({
          ending: plan.ending,
          writes: plan.writes.length,
          kinds: plan.kinds,
          answers: result.responses.map((p) => decodeErrorResponse(p).message),
        });
      expect(result.responses.length, why()).toBeGreaterThanOrEqual(plan.expect.min);
      if (plan.expect.max !== undefined) {
        expect(result.responses.length, why()).toBeLessThanOrEqual(plan.expect.max);
        exact++;
      }
      for (const payload of result.responses) {
        expect(messageTypeOf(payload)).toBe(MessageType.ErrorResponse);
        const e = decodeErrorResponse(payload);
        expect([
          HostErrorCode.MALFORMED_REQUEST,
          HostErrorCode.UNSUPPORTED_VERSION,
          HostErrorCode.GROUP_NOT_SERVED,
        ]).toContain(e.code);
        byCode.set(hostErrorName(e.code), (byCode.get(hostErrorName(e.code)) ?? 0) + 1);
        answers++;
      }
    }
    console.log(
      `fuzz: ${plans.length} connections (${exact} with an exact answer count), ${generated} frames, ${bytes} bytes; ${answers} error answers`,
      Object.fromEntries(byCode),
      Object.fromEntries(kinds),
    );
    expect(generated).toBe(FRAMES);
    expect(answers).toBeGreaterThan(FRAMES / 2);
    expect(byCode.get('GROUP_NOT_SERVED')).toBeGreaterThan(0);
    expect(byCode.get('MALFORMED_REQUEST')).toBeGreaterThan(0);
    expect(byCode.get('UNSUPPORTED_VERSION')).toBeGreaterThan(0);

    // The host still serves correctly: a known client keeps the count, a new one adds to it.
    const again = decodeActivationResponse(await ask(address, requestPayload(fx.group.id, { clientId: known[1] })));
    expect(again.count).toBe(3);
    const cert = decodeHostCertificate(again.certificate);
    expect(verifyHostCertificate(cert, publicKeyFromRaw(fx.authority.rootPublicKeyRaw))).toBe(true);
    expect(
      verifyMessage(
        hostPublicKeyOf(cert),
        Buffer.concat([BATCH_CONTEXT, rootFromProof(leafHash(again.body), again.proof)]),
        again.signature,
      ),
    ).toBe(true);
    expect(running.counts()).toEqual(countBefore);
    const fresh = decodeActivationResponse(
      await ask(address, requestPayload(fx.group.id, { clientId: Buffer.alloc(16, 0xee) })),
    );
    expect(fresh.count).toBe(4);
    // version 2 (the fixture's requests) carries the area; version 1 still gets the version-1 answer
    expect(again.protocolVersion).toBe(2);
    const v1 = rechecked(requestPayload(fx.group.id, { clientId: known[0] }));
    v1[0] = 1;
    const old = decodeActivationResponse(await ask(address, rechecked(v1)));
    expect(old.protocolVersion).toBe(1);
    expect(old.count).toBe(4);

    const statsAfter = running.statistics();
    const failed = statsAfter.failedRequests - statsBefore.failedRequests;
    expect(statsAfter.totalRequests - statsAfter.failedRequests).toBe(
      statsBefore.totalRequests - statsBefore.failedRequests + 3,
    );
    expect(statsAfter.byLicenceState.reduce((a, b) => a + b, 0)).toBe(
      statsBefore.byLicenceState.reduce((a, b) => a + b, 0) + 3,
    );
    expect(failed).toBeGreaterThanOrEqual(answers);

    // After closing (which drops anything still in flight), the stored window agrees.
    await running.close();
    host = undefined;
    const status = hostStatus(fx.hostDir, fx.clock);
    expect(status.groups[0]?.count).toBe(4);
    expect(status.requests.total - status.requests.failed).toBe(
      statsBefore.totalRequests - statsBefore.failedRequests + 3,
    );
  });
});
