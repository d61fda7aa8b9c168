/** A worker thread of the verification pool: runs `verifyJob` on the jobs the simulation posts. */
import { parentPort, workerData } from 'node:worker_threads';
import { publicKeyFromRaw } from '@volact/core';
import { verifyJob, type VerifyContext, type VerifyJob } from './verify-batch.js';

const data = workerData as { rootPublicKey: Uint8Array; groupId: Uint8Array; maxClockSkew: number };
const context: VerifyContext = {
  rootPublicKey: publicKeyFromRaw(data.rootPublicKey),
  groupId: Buffer.from(data.groupId),
  maxClockSkew: data.maxClockSkew,
};

parentPort?.on('message', (message: { id: number; job: VerifyJob }) => {
  const outcome = verifyJob(message.job, context);
  parentPort?.postMessage({ id: message.id, outcome }, [outcome.codes.buffer, outcome.fields.buffer] as ArrayBuffer[]);
});
