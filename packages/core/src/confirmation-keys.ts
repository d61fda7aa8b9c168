import { DAY } from './clock.js';
import type { CidKeyIndex, ConfirmationKeys } from './installation-id.js';
import { DELEGATION_PURPOSE } from './trust/delegation.js';
import type { TrustStore } from './trust/trust-store.js';

/**
 * The keys a confirmation ID's key index names, from a TrustStore: for index 0 the roots valid
 * on the CID's issue day (short signature v1), for 1..3 the online keys delegated with `purpose`
 * whose sequence gives that index and whose delegation covers that day (v2). A CID names a day,
 * not an instant: a key valid at any moment of that day (± skewMs) is a candidate.
 *
 * purpose: DELEGATION_PURPOSE.confirmations for online and phone CIDs of installations,
 * phoneHostCertificates for a KMS host's phone CID, phoneActivationObjects for an object's.
 */
export function trustConfirmationKeys(
  trust: Pick<TrustStore, 'rootsAt' | 'delegatesForIndex'>,
  purpose: number = DELEGATION_PURPOSE.confirmations,
  skewMs = 0,
): ConfirmationKeys {
  return {
    forIndex(index: CidKeyIndex, issuedDay: number): readonly Uint8Array[] {
      const noon = issuedDay * DAY + DAY / 2;
      const skew = DAY / 2 + skewMs;
      return index === 0
        ? trust.rootsAt(noon, skew).map((r) => r.publicKeyRaw)
        : trust.delegatesForIndex(index, noon, purpose, skew).map((d) => d.delegation.delegatePublicKey);
    },
  };
}
