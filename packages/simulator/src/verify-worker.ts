/** A worker thread of the verification pool: runs `verifyJob` on the jobs the simulation posts. */
import { parentPort, workerData } from 'node:worker_threads';
import { VerificationMemo } from '@volact/client';
import { publicKeyFromRaw } from '@volact/core';
import { verifyJob, type VerifyContext, type VerifyJob } from './verify-batch.js';

const data = workerData as { rootPublicKey: Uint8Array; groupId: Uint8Array; maxClockSkew: number };
const rootPublicKey = publicKeyFromRaw(data.rootPublicKey);
const context: VerifyContext = {
  rootPublicKey,
  memo: new VerificationMemo(rootPublicKey),
  groupId: Buffer.from(data.groupId),
  maxClockSkew: data.maxClockSkew,
};

parentPort?.on('message', (message: { id: number; job: VerifyJob }) => {
  const outcome = verifyJob(message.job, context);
  parentPort?.postMessage({ id: message.id, outcome }, [outcome.codes.buffer, outcome.fields.buffer] as ArrayBuffer[]);
});
