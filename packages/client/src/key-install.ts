import { CoreError, guidToBytes, keyFitsGroup, lastFiveOf, parseKeyOfType } from '@volact/core';
import { ClientError } from './errors.js';
import type { LicenceRecord } from './licence-store.js';

/**
 * Installing a product key (the reference's /ipk): the group's GVLK for KMS activation, a MAK
 * or a retail key. Returns the new record, or null when that key is installed already (nothing
 * changes). Another key means the activation made with the old one no longer applies; going
 * back to the GVLK keeps a KMS activation (it was made with the GVLK).
 */
export function withInstalledKey(record: LicenceRecord, text: string, now: number): LicenceRecord | null {
  let key;
  try {
    key = parseKeyOfType(text, 'gvlk', 'mak', 'retail');
  } catch (err) {
    throw new ClientError('KEY_INVALID', err instanceof CoreError ? err.message : String(err));
  }
  if (key.type === 'gvlk' && key.text !== record.product.gvlk) {
    throw new ClientError(
      'KEY_INVALID',
      `key ${lastFiveOf(key)} is the GVLK of another product group, not of ${record.product.group.name}`,
    );
  }
  // A MAK or retail key minted for one group says which (an older key does not: the authority
  // refuses it at activation instead).
  if (keyFitsGroup(key, guidToBytes(record.product.group.id)) === false) {
    throw new ClientError(
      'KEY_INVALID',
      `key ${lastFiveOf(key)} is a ${key.type === 'mak' ? 'MAK' : 'retail key'} of another product group, not of ${record.product.group.name}; install a key minted for ${record.product.group.name}`,
    );
  }
  if (record.installedKey?.text === key.text) return null;
  const keepsActivation = key.type === 'gvlk' && record.activation?.method === 'kms';
  return {
    ...record,
    installedKey: { type: key.type === 'gvlk' || key.type === 'retail' ? key.type : 'mak', text: key.text },
    activation: keepsActivation ? record.activation : null,
    nextAttemptAt: now,
  };
}

/**
 * Uninstalling the product key (the reference's /upk): the key goes, and with it the activation
 * (made with it, or carried in with it: a KMS response, a MAK or retail confirmation, a directory
 * object, an OEM marker, a token). The installation is then as one with no key: unlicensed,
 * nothing to attempt until a key is installed. Kept: the install date (installing a key again
 * does not restart the initial grace), how hosts are found (KMS host, discovery, directory
 * membership, act-type), and the CRLs and serials seen revoked (nothing un-revokes a token).
 * Returns null when no key is installed (nothing changes).
 */
export function withoutInstalledKey(record: LicenceRecord, now: number): LicenceRecord | null {
  if (!record.installedKey && !record.activation) return null;
  return {
    ...record,
    installedKey: null,
    activation: null,
    nonGenuineSince: null,
    lastAttempt: null,
    nextAttemptAt: now,
  };
}
