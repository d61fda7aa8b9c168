import type { KeyObject } from 'node:crypto';
import {
  BATCH_CONTEXT,
  FRAME_HEADER,
  decodeActivationResponse,
  decodeHostCertificate,
  leafHash,
  publicKeyFromRaw,
  rootFromProof,
  verifyHostCertificate,
  verifyMessage,
} from '@volact/core';
import type { Sample } from './load.js';

export interface VerificationSummary {
  readonly verified: number;
  /** Distinct batch signatures among the samples. */
  readonly signatures: number;
  readonly maxProofSteps: number;
}

/**
 * Checks sampled responses the way a client would, outside the timed part: the certificate is
 * the host's and chains to the authority's root; the response answers the request that was
 * sent (group, client ID, nonce); the Merkle path leads from the response body to a root; the
 * host's Ed25519 signature over BATCH_CONTEXT || root is valid. Any failure throws: a bench
 * that measured unsigned or wrong answers must not report a figure.
 */
export class ResponseVerifier {
  readonly #certificate: Buffer;
  readonly #hostKey: KeyObject;

  constructor(certificate: Buffer, authorityRootPublicKey: Buffer) {
    const cert = decodeHostCertificate(certificate);
    if (!verifyHostCertificate(cert, publicKeyFromRaw(authorityRootPublicKey))) {
      throw new Error('the host certificate is not signed by the bench authority');
    }
    this.#certificate = cert.encoded;
    this.#hostKey = publicKeyFromRaw(cert.hostPublicKey);
  }

  verify(samples: readonly Sample[]): VerificationSummary {
    const signatures = new Set<string>();
    let maxProofSteps = 0;
    for (const [i, { request, response }] of samples.entries()) {
      const fail = (why: string): never => {
        throw new Error(`sampled response ${i} failed verification: ${why}`);
      };
      const r = decodeActivationResponse(response);
      if (!r.certificate.equals(this.#certificate)) fail("it carries another certificate than the host's");
      const req = request.subarray(FRAME_HEADER);
      if (!r.groupId.equals(req.subarray(4, 20))) fail('group does not match the request');
      if (!r.clientId.equals(req.subarray(20, 36))) fail('client ID does not match the request');
      if (!r.nonce.equals(req.subarray(36, 52))) fail('nonce does not match the request');
      if (r.count < 1) fail(`count ${r.count}`);
      const root = rootFromProof(leafHash(r.body), r.proof);
      if (!verifyMessage(this.#hostKey, Buffer.concat([BATCH_CONTEXT, root]), r.signature)) {
        fail('the host signature over the Merkle root is invalid');
      }
      signatures.add(r.signature.toString('base64'));
      maxProofSteps = Math.max(maxProofSteps, r.proof.length);
    }
    return { verified: samples.length, signatures: signatures.size, maxProofSteps };
  }
}
