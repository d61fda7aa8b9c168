import type { KeyObject } from 'node:crypto';
import {
  BATCH_CONTEXT,
  EMPTY_EXTENSION_AREA,
  encodeActivationResponse,
  FRAME_HEADER,
  leafHash,
  merkleTree,
  signMessage,
  type ProofStep,
} from '@volact/core';

/** At most 2^10 responses under one signature: proofs stay ≤ 10 steps (330 bytes). */
export const MAX_BATCH = 1024;

type Deliver = (framed: Buffer) => void;

/**
 * Signs the responses produced in one turn of the event loop with ONE Ed25519 signature over
 * a Merkle root; each response carries its path. Ed25519 signing (~40 µs) would otherwise cap
 * a core near 25 000 responses/s; a batch of n costs one signature plus ~2n hashes.
 */
export class BatchSigner {
  #bodies: Buffer[] = [];
  #deliveries: Deliver[] = [];
  #scheduled = false;
  #extensions: Buffer = EMPTY_EXTENSION_AREA;
  signatures = 0;
  responses = 0;

  constructor(
    private readonly privateKey: KeyObject,
    private certificate: Buffer,
  ) {}

  /** Later responses carry this certificate (after a renewal). */
  setCertificate(certificate: Buffer): void {
    this.certificate = certificate;
  }

  /**
   * Later version-2 responses end with this extension area (encodeResponseExtensions: the host
   * status, transition records, delegation certificates), encoded once per change; version-1
   * responses never carry it.
   */
  setExtensions(area: Buffer): void {
    this.#extensions = area;
  }

  get extensions(): Buffer {
    return this.#extensions;
  }

  enqueue(body: Buffer, deliver: Deliver): void {
    this.#bodies.push(body);
    this.#deliveries.push(deliver);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // setImmediate runs after the poll phase: every request read in this turn joins the batch.
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.#scheduled = false;
    const bodies = this.#bodies;
    const deliveries = this.#deliveries;
    this.#bodies = [];
    this.#deliveries = [];
    for (let start = 0; start < bodies.length; start += MAX_BATCH) {
      const slice = bodies.slice(start, start + MAX_BATCH);
      let proofs: ProofStep[][];
      let root: Buffer;
      if (slice.length === 1) {
        root = leafHash(slice[0] as Buffer);
        proofs = [[]];
      } else {
        ({ root, proofs } = merkleTree(slice.map(leafHash)));
      }
      const signature = signMessage(this.privateKey, Buffer.concat([BATCH_CONTEXT, root]));
      this.signatures++;
      for (let i = 0; i < slice.length; i++) {
        // Encoded straight into its frame (one buffer per response, no copy).
        const framed = encodeActivationResponse(
          slice[i] as Buffer,
          this.certificate,
          proofs[i] as ProofStep[],
          signature,
          FRAME_HEADER,
          this.#extensions,
        );
        framed.writeUInt32BE(framed.length - FRAME_HEADER, 0);
        (deliveries[start + i] as Deliver)(framed);
      }
      this.responses += slice.length;
    }
  }
}
