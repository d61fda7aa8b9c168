/** A worker thread of the verification pool: runs `verifyJob` on the jobs the simulation posts. */
import { parentPort, workerData } from 'node:worker_threads';
import { ClientTrust, VerificationMemo } from '@volact/client';
import { verifyJob, type VerifyContext, type VerifyJob } from './verify-batch.js';
import type { TrustMaterial } from './verify-pool.js';

const data = workerData as { trust: TrustMaterial; groupId: Uint8Array; maxClockSkew: number };
// The same trust store as the main thread's: built from the same material.
const trust = ClientTrust.of(data.trust.product, data.trust.stored);
const context: VerifyContext = {
  trust,
  memo: new VerificationMemo(trust),
  groupId: Buffer.from(data.groupId),
  maxClockSkew: data.maxClockSkew,
};

parentPort?.on('message', (message: { id: number; job: VerifyJob }) => {
  const outcome = verifyJob(message.job, context);
  parentPort?.postMessage({ id: message.id, outcome }, [outcome.codes.buffer, outcome.fields.buffer] as ArrayBuffer[]);
});
