import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BATCH_CONTEXT,
  FrameReader,
  MAX_RESPONSE_SIZE,
  decodeActivationResponse,
  encodeResponseBody,
  generateSigningKeyPair,
  leafHash,
  rootFromProof,
  verifyMessage,
} from '@volact/core';
import { BatchSigner, MAX_BATCH } from './batch-signer.js';

const key = generateSigningKeyPair();
const certificate = randomBytes(170);

function body(count: number): Buffer {
  return encodeResponseBody({
    groupId: randomBytes(16),
    clientId: randomBytes(16),
    nonce: randomBytes(16),
    hostTime: Date.UTC(2026, 0, 1),
    count,
    activationIntervalMin: 120,
    renewalIntervalMin: 10080,
  });
}

/** Enqueues the bodies in one turn; resolves with the decoded responses in enqueue order. */
function signAll(signer: BatchSigner, bodies: Buffer[]) {
  return Promise.all(
    bodies.map(
      (b) =>
        new Promise<ReturnType<typeof decodeActivationResponse>>((resolve) =>
          signer.enqueue(b, (framed) => {
            const [payload, ...rest] = new FrameReader(MAX_RESPONSE_SIZE).push(framed);
            expect(rest).toEqual([]);
            resolve(decodeActivationResponse(payload!));
          }),
        ),
    ),
  );
}

function verifies(r: ReturnType<typeof decodeActivationResponse>): boolean {
  const root = rootFromProof(leafHash(r.body), r.proof);
  return verifyMessage(key.publicKey, Buffer.concat([BATCH_CONTEXT, root]), r.signature);
}

describe('BatchSigner', () => {
  it('signs every response of one turn with one signature; each verifies with its own proof', async () => {
    const signer = new BatchSigner(key.privateKey, certificate);
    const bodies = Array.from({ length: 37 }, (_, i) => body(i));
    const responses = await signAll(signer, bodies);
    expect(signer.signatures).toBe(1);
    expect(signer.responses).toBe(37);
    responses.forEach((r, i) => {
      expect(r.body).toEqual(bodies[i]);
      expect(r.certificate).toEqual(certificate);
      expect(r.signature).toEqual(responses[0]!.signature);
      expect(verifies(r)).toBe(true);
    });
  });

  it('a response whose body was changed (e.g. its count) no longer verifies', async () => {
    const [r] = await signAll(new BatchSigner(key.privateKey, certificate), [body(3), body(4)]);
    const forged = Buffer.from(r!.body);
    forged.writeUInt32BE(25, 60);
    expect(verifies({ ...r!, body: forged })).toBe(false);
    expect(verifies(r!)).toBe(true);
  });

  it('a single response has an empty proof and a signature over its own leaf', async () => {
    const [r] = await signAll(new BatchSigner(key.privateKey, certificate), [body(1)]);
    expect(r!.proof).toEqual([]);
    expect(verifies(r!)).toBe(true);
  });

  it('separate turns get separate signatures', async () => {
    const signer = new BatchSigner(key.privateKey, certificate);
    const [a] = await signAll(signer, [body(1)]);
    const [b] = await signAll(signer, [body(2)]);
    expect(signer.signatures).toBe(2);
    expect(a!.signature).not.toEqual(b!.signature);
  });

  it(`splits more than ${MAX_BATCH} responses into batches, proofs of at most 10 steps`, async () => {
    const signer = new BatchSigner(key.privateKey, certificate);
    const responses = await signAll(
      signer,
      Array.from({ length: MAX_BATCH + 5 }, (_, i) => body(i)),
    );
    expect(signer.signatures).toBe(2);
    expect(Math.max(...responses.map((r) => r.proof.length))).toBe(10);
    expect(responses.every(verifies)).toBe(true);
  });
});
