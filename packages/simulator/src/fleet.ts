import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority } from '@volact/authority';
import { BatchSigner, KmsService, WindowStore, defaultKmsPolicy } from '@volact/kms-host';
import {
  DAY,
  HOUR,
  VolactError,
  decodeHostCertificate,
  encodeResponseExtensions,
  generateSigningKeyPair,
  type ManualClock,
  type ProductConfig,
} from '@volact/core';
import { SimulatorError } from './errors.js';
import type { Scenario } from './scenario.js';

export const GROUP_NAME = 'simulated';

/** One KMS host: the real request handling (`KmsService`: client-ID window, count) and signer. */
export interface SimHost {
  readonly name: string;
  readonly service: KmsService;
  readonly signer: BatchSigner;
  /** Its SRV record, as its DNS publisher would publish it (RFC 2782: priority, weight). */
  readonly srv: { readonly index: number; readonly priority: number; readonly weight: number };
  up: boolean;
  /** Its certificate (online, v1): it fetches its revocation status with it, as a real host does. */
  readonly certificate: Buffer;
  /** When it last fetched its status (virtual time). */
  statusAt: number;
}

/** A real host renews its status at every renewal check: at start and every 6 hours. */
export const STATUS_RENEWAL = 6 * HOUR;

export interface Fleet {
  readonly authority: Authority;
  readonly product: ProductConfig;
  readonly hosts: SimHost[];
  /** The MAK the scenario's MAK clients install, when it has some. */
  readonly mak: string | null;
  /**
   * Each host whose status is 6 hours old fetches a new one from the authority (clients refuse
   * an online-certified host's answer without a current one) and staples it to later answers.
   */
  renewStatuses(now: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Sets up what the organisation and the publisher run: a real authority (root key, SQLite, in a
 * temporary directory) with the product group, a KMS host key and each host activated with it
 * (each gets a host certificate signed by the root), and the product config a client ships.
 * The hosts keep their client-ID windows in memory (SQLite `:memory:`), never flushed to disk.
 */
export async function setUpFleet(scenario: Scenario, clock: ManualClock): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'volact-sim-'));
  let authority: Authority | undefined;
  const stores: WindowStore[] = [];
  const close = async () => {
    for (const s of stores) s.close();
    await authority?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    authority = Authority.init(join(dir, 'authority'), {
      clock,
      // The hosts would re-activate (free) before their certificates end; a run is shorter.
      hostCertificateValidity: (scenario.days + 31) * DAY,
    });
    await authority.addGroup({ name: GROUP_NAME, kind: 'app', threshold: scenario.threshold });
    const product = await authority.productConfig(GROUP_NAME);
    const hostKey = await authority.mintKey({ type: 'kms-host', groups: [GROUP_NAME], hosts: scenario.hosts.count });
    const hosts: SimHost[] = [];
    for (let i = 0; i < scenario.hosts.count; i++) {
      const keys = generateSigningKeyPair();
      const result = await authority.activateHost({
        hostKey: hostKey.key,
        hostPublicKey: keys.publicKeyRaw,
        hardwareId: `sim-host-${i + 1}`,
      });
      const certificate = decodeHostCertificate(result.certificate);
      const store = new WindowStore(':memory:');
      stores.push(store);
      hosts.push({
        name: `host${i + 1}`,
        service: new KmsService({
          clock,
          store,
          certificate,
          groups: [{ id: product.group.id, name: product.group.name, threshold: product.group.threshold }],
          policy: defaultKmsPolicy,
        }),
        signer: new BatchSigner(keys.privateKey, certificate.encoded),
        srv: { index: i, priority: 0, weight: 1 },
        up: true,
        certificate: certificate.encoded,
        statusAt: -Infinity,
      });
    }
    const renewStatuses = async (now: number) => {
      for (const h of hosts) {
        if (now - h.statusAt < STATUS_RENEWAL) continue;
        const answer = await (authority as Authority).hostStatus(h.certificate);
        h.signer.setExtensions(
          encodeResponseExtensions({ hostStatus: answer.status, transitions: [], delegations: [] }),
        );
        h.statusAt = now;
      }
    };
    await renewStatuses(clock.now());
    const mak =
      scenario.mak && scenario.mak.clients > 0
        ? (await authority.mintKey({ type: 'mak', groups: [GROUP_NAME], limit: scenario.mak.limit })).key
        : null;
    return { authority, product, hosts, mak, renewStatuses, close };
  } catch (err) {
    await close();
    if (err instanceof VolactError) throw new SimulatorError('SIMULATION_FAILED', `${err.code}: ${err.message}`);
    throw err;
  }
}
