import { ConsoleError } from './errors.js';
import type { Fleet } from './fleet.js';
import type { KeySummary, MachineResult, MachineSelection, Progress } from './results.js';

/** The console's product keys: stored sealed, installed on machines by name. */

export async function addKey(fleet: Fleet, text: string, name?: string): Promise<KeySummary> {
  const key = fleet.parseKey(text, 'mak', 'gvlk', 'kms-host');
  const record = await fleet.storeKey(key, name);
  return fleet.keySummary(record);
}

export async function listKeys(fleet: Fleet): Promise<KeySummary[]> {
  return (await fleet.store.listKeys()).map((k) => fleet.keySummary(k));
}

export async function installKey(
  fleet: Fleet,
  keyRef: string,
  refs: MachineSelection,
  onProgress?: Progress,
): Promise<MachineResult[]> {
  const machines = await fleet.resolve(refs);
  const key = await fleet.resolveKey(keyRef);
  if (key.type === 'kms-host') {
    throw new ConsoleError(
      'KEY_INVALID',
      `"${key.name}" is a KMS host key (${key.last5}): it goes on a KMS host (\`volact host install-key\`), not on a client`,
    );
  }
  const text = fleet.box.unseal(key.sealed, `key:${key.fingerprint}`, `stored key "${key.name}"`);
  return fleet.forEach(machines, onProgress, async (machine, agent) => {
    const status = await agent.installKey(text);
    await fleet.recordStatus(machine, status);
    await fleet.log('install-key', machine.name, true, null, `${key.type} ${key.last5} (${key.name})`);
    return fleet.success(machine, status, `installed ${key.type} ${key.last5} (${key.name})`);
  });
}
