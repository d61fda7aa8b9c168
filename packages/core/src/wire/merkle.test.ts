import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leafHash, merkleTree, nodeHash, rootFromProof } from './merkle.js';

describe('Merkle batch tree', () => {
  it('for batch sizes 1..40, every leaf proof reproduces the root', () => {
    for (let n = 1; n <= 40; n++) {
      const bodies = Array.from({ length: n }, () => randomBytes(72));
      const { root, proofs } = merkleTree(bodies.map(leafHash));
      expect(proofs.length).toBe(n);
      bodies.forEach((body, i) => {
        const proof = proofs[i]!;
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
        expect(rootFromProof(leafHash(body), proof)).toEqual(root);
      });
    }
  });

  it("for batch sizes 2..40, another leaf's proof or a modified body does not reproduce the root", () => {
    for (let n = 2; n <= 40; n++) {
      const bodies = Array.from({ length: n }, () => randomBytes(72));
      const { root, proofs } = merkleTree(bodies.map(leafHash));
      for (let i = 0; i < n; i++) {
        const body = bodies[i]!;
        for (let j = 0; j < n; j++) {
          if (j === i) continue;
          expect(rootFromProof(leafHash(body), proofs[j]!)).not.toEqual(root);
          // the other leaf's body does not verify with this leaf's proof either
          expect(rootFromProof(leafHash(bodies[j]!), proofs[i]!)).not.toEqual(root);
        }
        const modified = Buffer.from(body);
        modified[i % 72] = (modified[i % 72] as number) ^ 1;
        expect(rootFromProof(leafHash(modified), proofs[i]!)).not.toEqual(root);
      }
    }
  });

  it('a proof with a flipped side or sibling does not reproduce the root', () => {
    const bodies = Array.from({ length: 13 }, () => randomBytes(72));
    const { root, proofs } = merkleTree(bodies.map(leafHash));
    const proof = proofs[6]!;
    for (let s = 0; s < proof.length; s++) {
      const sideFlipped = proof.map((step, k) => (k === s ? { ...step, siblingLeft: !step.siblingLeft } : step));
      expect(rootFromProof(leafHash(bodies[6]!), sideFlipped)).not.toEqual(root);
      const sibling = Buffer.from(proof[s]!.sibling);
      sibling[0] = (sibling[0] as number) ^ 0x80;
      const siblingChanged = proof.map((step, k) => (k === s ? { ...step, sibling } : step));
      expect(rootFromProof(leafHash(bodies[6]!), siblingChanged)).not.toEqual(root);
    }
  });

  it('a batch of one is its own root with an empty proof', () => {
    const leaf = leafHash(Buffer.from('only'));
    expect(merkleTree([leaf])).toEqual({ root: leaf, proofs: [[]] });
  });

  it('an empty batch is refused', () => {
    expect(() => merkleTree([])).toThrow(RangeError);
  });

  it('separates leaves from inner nodes: a leaf over two hashes is not their parent', () => {
    const a = leafHash(Buffer.from('a'));
    const b = leafHash(Buffer.from('b'));
    expect(leafHash(Buffer.concat([a, b]))).not.toEqual(nodeHash(a, b));
    expect(leafHash(Buffer.from('x'))).not.toEqual(createHash('sha256').update('x').digest());
  });
});
