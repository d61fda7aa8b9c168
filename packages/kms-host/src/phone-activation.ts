import {
  CoreError,
  buildPhoneCertificate,
  decodeHostCertificate,
  keyRefOf,
  makeInstallationId,
  parseConfirmationId,
  parseKey,
  publicKeyFromRaw,
  DELEGATION_PURPOSE,
  TrustStore,
  rootConfirmationKeys,
  trustConfirmationKeys,
  verifyHostCertificate,
  systemClock,
  type Clock,
  type ConfirmationKeys,
  type ProductConfig,
} from '@volact/core';
import { KmsHostError } from './errors.js';
import type { HostState } from './host-state.js';

/** The activation's `authorityUrl` when the certificate came by phone: renewed by phone too. */
export const PHONE_ACTIVATION = 'phone';
/** Fixed by the protocol: a confirmation ID carries the issue day, not the validity. */
const PHONE_CERT_VALIDITY_DAYS = 365;

/**
 * Phone activation of a KMS host, step 1: the installation ID to read out. The host learns
 * which groups it serves from the products' configuration files (it has no authority to ask);
 * they must name exactly the groups of its host key, which the authority checks.
 */
export function hostInstallationId(state: HostState, products: readonly ProductConfig[]): string {
  if (products.length === 0) {
    throw new KmsHostError('HOST_CONFIG_INVALID', 'name the products this host serves: --product product.json');
  }
  const root = products[0]!.authority.rootPublicKey;
  const other = products.find((p) => p.authority.rootPublicKey !== root);
  if (other) {
    throw new KmsHostError(
      'HOST_CONFIG_INVALID',
      `${other.group.name} comes from another authority than ${products[0]!.group.name}: one host key covers one publisher's groups`,
    );
  }
  const groups = [...new Map(products.map((p) => [p.group.id, p.group])).values()]
    .map((g) => ({ id: g.id, name: g.name, threshold: g.threshold }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const delegations = products[0]!.authority.delegations ?? [];
  state.recordPhoneRequest({ groups, rootPublicKey: root, ...(delegations.length ? { delegations } : {}) });
  return makeInstallationId({
    kind: 'kms-host',
    key: parseKey(state.hostKey),
    hardwareId: state.hardwareId,
    groupIds: groups.map((g) => g.id),
    hostPublicKey: state.signingKey().publicKeyRaw,
  }).text;
}

/**
 * The keys a phone CID may be signed by: the products' root (key index 0) and the online keys
 * their product config delegates for phone host certificates (1..3). A delegation that does not
 * verify under the root is ignored (the TrustStore refuses it).
 */
function phoneConfirmationKeys(rootPublicKeyRaw: Buffer, delegations: readonly string[]): ConfirmationKeys {
  if (delegations.length === 0) return rootConfirmationKeys(rootPublicKeyRaw);
  const trust = TrustStore.fromRoots([{ publicKeyRaw: rootPublicKeyRaw, validFrom: 0 }]);
  for (const d of delegations) {
    try {
      trust.learnDelegation(Buffer.from(d, 'base64'));
    } catch {
      // not the products' root's: not a candidate
    }
  }
  return trustConfirmationKeys(trust, DELEGATION_PURPOSE.phoneHostCertificates);
}

/**
 * Step 2: the confirmation ID the publisher read back. The host rebuilds its certificate
 * around the signature it carries, with the issuer its key index names (the online key of that
 * index, or the root for index 0), and keeps it only if it verifies under that key.
 */
export function installHostConfirmation(
  state: HostState,
  confirmationId: string,
  options: {
    clock?: Clock;
    /**
     * The keys the CID's key index may name (a TrustStore's, purpose phoneHostCertificates:
     * `trustConfirmationKeys`). Default: the products' root alone.
     */
    keys?: ConfirmationKeys;
  } = {},
): { expiresAt: number; groups: { id: string; name: string; threshold: number }[] } {
  const request = state.phoneRequest;
  if (!request) {
    throw new KmsHostError(
      'HOST_CONFIG_INVALID',
      'no phone activation in progress: run `volact host installation-id --product …` first',
    );
  }
  let cid;
  try {
    cid = parseConfirmationId(confirmationId);
  } catch (err) {
    if (err instanceof CoreError) throw new KmsHostError('CONFIRMATION_INVALID', err.message);
    throw err;
  }
  const rootPublicKeyRaw = Buffer.from(request.rootPublicKey, 'base64');
  const scheme = cid.keyIndex === 0 ? 'root' : 'delegate';
  const built = (options.keys ?? phoneConfirmationKeys(rootPublicKeyRaw, request.delegations ?? []))
    .forIndex(cid.keyIndex, cid.issuedDay)
    .map((issuerPublicKeyRaw) => {
      const encoded = buildPhoneCertificate(
        {
          keyRef: keyRefOf(state.hostKey),
          issuedDay: cid.issuedDay,
          validityDays: PHONE_CERT_VALIDITY_DAYS,
          groupIds: request.groups.map((g) => g.id),
          hostPublicKey: state.signingKey().publicKeyRaw,
          issuerPublicKeyRaw: Buffer.from(issuerPublicKeyRaw),
        },
        cid.signature,
      );
      return { encoded, issuerPublicKeyRaw };
    })
    .find((c) =>
      verifyHostCertificate(decodeHostCertificate(c.encoded), publicKeyFromRaw(c.issuerPublicKeyRaw), scheme),
    );
  if (built === undefined) {
    throw new KmsHostError(
      'CONFIRMATION_INVALID',
      "this confirmation ID was not issued for this host's installation ID (another host's, other groups, or not by the products' authority): read out `volact host installation-id` again",
    );
  }
  const { encoded } = built;
  const certificate = decodeHostCertificate(encoded);
  const now = (options.clock ?? systemClock).now();
  if (certificate.expiresAt <= now) {
    throw new KmsHostError(
      'CONFIRMATION_INVALID',
      `this confirmation ID was issued ${new Date(certificate.issuedAt).toISOString().slice(0, 10)}; its certificate has expired: read out a new installation ID`,
    );
  }
  state.recordActivation({
    authorityUrl: PHONE_ACTIVATION,
    certificate: encoded.toString('base64'),
    activatedAt: new Date(now).toISOString(),
    groups: request.groups,
  });
  return { expiresAt: certificate.expiresAt, groups: request.groups };
}
