import { hash } from 'node:crypto';

/**
 * Batch signing: the host signs one Merkle root over the responses it produced in one turn of
 * its event loop; each response carries the sibling hashes from its leaf to that root.
 * Leaves and inner nodes are hashed with distinct prefixes (RFC 6962 §2.1) so a leaf can never
 * be passed off as an inner node. An unpaired node moves up a level unchanged.
 */
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export interface ProofStep {
  /** true when the sibling stands on the left of the running hash. */
  readonly siblingLeft: boolean;
  readonly sibling: Buffer;
}

// One-shot hashes over a concatenation: no Hash object per leaf or node (the host hashes
// about two per response).
export function leafHash(body: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF, body]), 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([NODE, left, right]), 'buffer');
}

/** Builds the tree over leaf hashes; returns the root and each leaf's proof. */
export function merkleTree(leaves: readonly Buffer[]): { root: Buffer; proofs: ProofStep[][] } {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  const proofs: ProofStep[][] = leaves.map(() => []);
  // members[j] = the leaves under node j of the current level
  let level = leaves.slice();
  let members: number[][] = leaves.map((_, i) => [i]);
  while (level.length > 1) {
    const next: Buffer[] = [];
    const nextMembers: number[][] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i] as Buffer;
      const right = level[i + 1];
      const leftMembers = members[i] as number[];
      if (right === undefined) {
        next.push(left);
        nextMembers.push(leftMembers);
        continue;
      }
      const rightMembers = members[i + 1] as number[];
      for (const m of leftMembers) (proofs[m] as ProofStep[]).push({ siblingLeft: false, sibling: right });
      for (const m of rightMembers) (proofs[m] as ProofStep[]).push({ siblingLeft: true, sibling: left });
      next.push(nodeHash(left, right));
      nextMembers.push(leftMembers.concat(rightMembers));
    }
    level = next;
    members = nextMembers;
  }
  return { root: level[0] as Buffer, proofs };
}

export function rootFromProof(leaf: Buffer, proof: readonly ProofStep[]): Buffer {
  let h = leaf;
  for (const step of proof) h = step.siblingLeft ? nodeHash(step.sibling, h) : nodeHash(h, step.sibling);
  return h;
}
