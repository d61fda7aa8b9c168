import { readHardwareFingerprint } from '@volact/core';
import { parseHardwareId } from '../options.js';

/**
 * What the installation learns from outside its store at every start: the hardware id
 * (--hardware-id, else VOLACT_HARDWARE_ID, else this machine's fingerprint) and the directory
 * domain this machine is a member of (--member-domain, else VOLACT_MEMBER_DOMAIN, else the
 * machine's DNS domain, read by the client). An edit of licence.json changes neither.
 */
export function atStart(options: object): { hardwareId: string; memberDomain?: string } {
  const o = options as { hardwareId?: string; memberDomain?: string };
  const given = o.hardwareId ?? process.env.VOLACT_HARDWARE_ID;
  const memberDomain = o.memberDomain ?? process.env.VOLACT_MEMBER_DOMAIN;
  return {
    hardwareId: given ? parseHardwareId(given) : readHardwareFingerprint(),
    ...(memberDomain === undefined ? {} : { memberDomain }),
  };
}
