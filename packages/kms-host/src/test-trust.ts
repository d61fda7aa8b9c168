/**
 * Test support (only through `@volact/kms-host/testing`): a host status signed by a test's own
 * root, recorded in a host's data directory as if its authority had given it. For launchers
 * whose hosts are certified by a root the test holds but that talk to no authority serving
 * `/v1/host-status` (a host activated against the real authority fetches its own at activation).
 * Call it before `startKmsHost`: a running host staples what host.json holds at start and after
 * each check (`checkNow()`).
 */
import { DAY, hostKeyRefOf, makeHostStatus, makeRevocationList, type Signer } from '@volact/core';
import { HostState } from './host-state.js';

export interface TestHostStatusOptions {
  /** When the status and its list are issued (default: now by the host's certificate's issue time). */
  readonly issuedAt?: number;
  /** Default: 7 days after issuedAt (the authority's list lifetime). */
  readonly nextUpdate?: number;
  /** Default 1. */
  readonly listVersion?: number;
}

/** Signs a status for the host's key (and an empty revocation list) with `root`, and records both. */
export function stapleTestHostStatus(hostDir: string, root: Signer, options: TestHostStatusOptions = {}): Buffer {
  const state = HostState.open(hostDir);
  const certificate = state.certificate();
  if (!certificate) throw new Error(`the host in ${hostDir} is not activated: a status names a certified host key`);
  const issuedAt = options.issuedAt ?? certificate.issuedAt;
  const nextUpdate = options.nextUpdate ?? issuedAt + 7 * DAY;
  const listVersion = options.listVersion ?? 1;
  const status = makeHostStatus(
    { hostKeyRef: hostKeyRefOf(certificate.hostPublicKey), listVersion, issuedAt, nextUpdate },
    root,
  );
  const list = makeRevocationList({ listVersion, issuedAt, nextUpdate, entries: [] }, root);
  state.recordTrust({
    ...state.trust,
    hostStatus: status.toString('base64'),
    revocationList: list.toString('base64'),
  });
  return status;
}
