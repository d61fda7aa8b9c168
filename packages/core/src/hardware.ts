import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { sha256 } from './crypto.js';

/**
 * The machine's hardware fingerprint: a hash of the DMI product UUID when readable, else of the
 * OS machine id and host name. Containers and VMs share or lack these, which is why every
 * command that needs a fingerprint accepts an explicit hardware id instead.
 */
export function readHardwareFingerprint(): string {
  for (const path of ['/sys/class/dmi/id/product_uuid', '/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const value = readFileSync(path, 'utf8').trim();
      if (value)
        return sha256(Buffer.from(`volact-hw-v1\0${path}\0${value}`))
          .subarray(0, 16)
          .toString('hex');
    } catch {
      // try the next source
    }
  }
  return sha256(Buffer.from(`volact-hw-v1\0hostname\0${hostname()}`))
    .subarray(0, 16)
    .toString('hex');
}
