import { ClientError, clientErrors, verifyKmsResponse, type ClientTrust, type VerificationMemo } from '@volact/client';

/** Client error codes by index: what a batch result carries for a response that failed. */
export const VERIFY_CODES = Object.keys(clientErrors) as (keyof typeof clientErrors)[];
export const VERIFIED = -1;

/**
 * KMS responses to verify, packed for a worker: item i is `blob[offsets[i]..offsets[i+1]]`,
 * holding the client machine ID (16 bytes), the request's nonce (16) and the response payload;
 * `now[i]` is the client's clock when it read the answer.
 */
export interface VerifyJob {
  readonly blob: Uint8Array;
  readonly offsets: Uint32Array;
  readonly now: Float64Array;
}

/** Per item: `codes[i]` is VERIFIED or an index into VERIFY_CODES; `fields[4i..]` host time, count, intervals. */
export interface VerifyOutcome {
  readonly codes: Int16Array;
  readonly fields: Float64Array;
}

export interface VerifyContext {
  /** Whom the clients believe: the product config's bundle (as each client builds it). */
  readonly trust: ClientTrust;
  /**
   * Each distinct host certificate and batch signature verified once per thread (answers of
   * one host's 15-minute batch share one signature); every other check runs per answer.
   */
  readonly memo?: VerificationMemo;
  readonly groupId: Buffer;
  readonly maxClockSkew: number;
}

/**
 * Runs the client SDK's own check chain (`verifyKmsResponse`: certificate chain, group,
 * Merkle path and Ed25519 signature, nonce, client, clock) on every item, as each client would.
 */
export function verifyJob(job: VerifyJob, context: VerifyContext): VerifyOutcome {
  const n = job.now.length;
  const codes = new Int16Array(n);
  const fields = new Float64Array(4 * n);
  const blob = Buffer.from(job.blob.buffer, job.blob.byteOffset, job.blob.byteLength);
  for (let i = 0; i < n; i++) {
    const start = job.offsets[i] as number;
    const end = job.offsets[i + 1] as number;
    try {
      const { response } = verifyKmsResponse(blob.subarray(start + 32, end), {
        trust: context.trust,
        groupId: context.groupId,
        clientId: blob.subarray(start, start + 16),
        mode: { kind: 'live', nonce: blob.subarray(start + 16, start + 32) },
        now: job.now[i] as number,
        maxClockSkew: context.maxClockSkew,
        ...(context.memo ? { memo: context.memo } : {}),
      });
      codes[i] = VERIFIED;
      fields[4 * i] = response.hostTime;
      fields[4 * i + 1] = response.count;
      fields[4 * i + 2] = response.activationIntervalMin;
      fields[4 * i + 3] = response.renewalIntervalMin;
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      codes[i] = VERIFY_CODES.indexOf(err.code);
    }
  }
  return { codes, fields };
}

/** Packs items (client ID, nonce, payload, time) into one job. */
export function packJob(
  items: readonly { clientId: Buffer; nonce: Buffer; payload: Buffer; now: number }[],
): VerifyJob {
  let size = 0;
  for (const it of items) size += 32 + it.payload.length;
  const blob = new Uint8Array(size);
  const offsets = new Uint32Array(items.length + 1);
  const now = new Float64Array(items.length);
  let at = 0;
  items.forEach((it, i) => {
    offsets[i] = at;
    blob.set(it.clientId, at);
    blob.set(it.nonce, at + 16);
    blob.set(it.payload, at + 32);
    at += 32 + it.payload.length;
    now[i] = it.now;
  });
  offsets[items.length] = at;
  return { blob, offsets, now };
}
