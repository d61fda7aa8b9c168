import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence, type LicenceStatus } from '@volact/client';
import {
  DAY,
  OBJECT_EXPIRY_WARNING_DAYS,
  activationObjectValidity,
  generateSigningKeyPair,
  signActivationToken,
  signOemMarker,
  randomGuid,
  type ActivationObject,
  type HostCertificate,
  type ManualClock,
  type ProductConfig,
} from '@volact/core';
import { publishEntry } from '@volact/directory';
import type { TestSlapd } from '@volact/directory/testing';
import { HostState, activateHostOnline, startKmsHost, type RunningKmsHost } from '@volact/kms-host';

/**
 * The fleet of the trust tests: one authority served on loopback, KMS hosts certified online,
 * and clients of every method, all on one injected clock. Clients are made from the product
 * config exported when the fleet starts and never given another one.
 */

export interface FleetClient {
  readonly name: string;
  readonly stateDir: string;
  readonly hardwareId: string;
  licence: Licence;
}

export interface Fleet {
  readonly root: string;
  readonly clock: ManualClock;
  readonly authority: Authority;
  readonly authorityUrl: string;
  /** The product config exported at the start: the only one any client of this fleet is given. */
  readonly product: ProductConfig;
  readonly clients: FleetClient[];
  close(): Promise<void>;
}

export async function startAuthority(
  clock: ManualClock,
  options: { threshold?: number; prefix?: string; signer?: string } = {},
): Promise<Omit<Fleet, 'clients'> & { api: { close(): Promise<void> } }> {
  const root = mkdtempSync(join(tmpdir(), options.prefix ?? 'volact-trust-'));
  const authority = Authority.init(join(root, 'authority'), {
    clock,
    ...(options.signer ? { signer: options.signer } : {}),
  });
  await authority.addGroup({ name: 'office14', threshold: options.threshold ?? 3 });
  const api = createAuthorityServer(authority, { clock });
  await api.listen({ host: '127.0.0.1', port: 0 });
  const authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
  const product = await authority.productConfig('office14', { url: authorityUrl });
  return {
    root,
    clock,
    authority,
    authorityUrl,
    product,
    api,
    async close() {
      await api.close();
      await authority.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface FleetHost {
  readonly dir: string;
  readonly key: string;
  running: RunningKmsHost;
  address(): string;
  /** The issuer (root key ID, hex) of the host's current certificate. */
  issuer(): string;
  /** The host's current certificate (as its data directory holds it). */
  certificate(): HostCertificate;
  /** The host's public key. */
  publicKey(): Buffer;
  close(): Promise<void>;
}

/** A KMS host with its own host key, activated online (at `authorityUrl`) and serving on loopback. */
export async function startOnlineHost(
  base: { root: string; clock: ManualClock; authority: Authority },
  name: string,
  authorityUrl: string,
): Promise<FleetHost> {
  const { key } = await base.authority.mintKey({ type: 'kms-host', groups: ['office14'] });
  const dir = join(base.root, `host-${name}`);
  await activateHostOnline(HostState.installKey(dir, key, `hw-host-${name}`, base.clock.now()), authorityUrl, {
    clock: base.clock,
  });
  const host: FleetHost = {
    dir,
    key,
    running: await startKmsHost({
      dataDir: dir,
      listen: { host: '127.0.0.1', port: 0 },
      clock: base.clock,
      flushIntervalMs: 50,
    }),
    address: () => `127.0.0.1:${host.running.address.port}`,
    issuer: () => host.certificate().issuer.toString('hex'),
    certificate: () => {
      const certificate = HostState.open(dir).certificate();
      if (!certificate) throw new Error(`host ${name} holds no certificate`);
      return certificate;
    },
    publicKey: () => host.certificate().hostPublicKey,
    close: () => host.running.close(),
  };
  return host;
}

export function newLicence(
  base: { root: string; clock: ManualClock; product: ProductConfig },
  name: string,
  extra: { memberDomain?: string } = {},
): FleetClient {
  const stateDir = join(base.root, 'clients', name);
  const hardwareId = `hw-${name}`;
  const licence = Licence.init({ stateDir, product: base.product, hardwareId, clock: base.clock, ...extra });
  return { name, stateDir, hardwareId, licence };
}

/** Opens the client again from its state directory: every signature is checked anew (no memo). */
export function reopen(base: { clock: ManualClock; product: ProductConfig }, c: FleetClient): Licence {
  return Licence.open({ stateDir: c.stateDir, product: base.product, hardwareId: c.hardwareId, clock: base.clock });
}

/** An OEM manufacturer certified by the authority, and a marker for `hardwareId`. */
export async function oemMarker(
  authority: Authority,
  product: ProductConfig,
  hardwareId: string,
  issuedAt: number,
): Promise<string> {
  const oemKey = generateSigningKeyPair();
  const certificate = await authority.issueOemCertificate({
    manufacturer: 'Contoso Devices',
    publicKeyRaw: oemKey.publicKeyRaw,
    groups: ['office14'],
    days: 3650,
  });
  const marker = signOemMarker(
    { group: product.group, hardwareId, machine: `SN-${hardwareId}`, issuedAt },
    oemKey.privateKey,
    certificate,
  );
  return JSON.stringify(marker);
}

/** An organisation's token CA certified by the authority, and a token for `hardwareId` lasting `days`. */
export async function activationToken(
  authority: Authority,
  hardwareId: string,
  now: number,
  days: number,
): Promise<string> {
  const caKey = generateSigningKeyPair();
  const caCertificate = await authority.issueTokenCa({
    organisation: 'Fabrikam',
    group: 'office14',
    publicKeyRaw: caKey.publicKeyRaw,
    days: days + 30,
  });
  const token = signActivationToken(
    { serial: randomGuid(), hardwareId, notBefore: now, notAfter: now + days * DAY },
    caKey.privateKey,
    caCertificate,
  );
  return JSON.stringify(token);
}

/**
 * The publisher's side of directory-based activation: an activation object published in the
 * test slapd, re-issued and published again (`--replace`) when it is within the warning period
 * of its end, as `volact authority activation-object create` + `volact directory publish` would.
 */
export class DirectoryPublisher {
  object: ActivationObject | undefined;
  readonly issued: ActivationObject[] = [];
  constructor(
    private readonly authority: Authority,
    private readonly slapd: TestSlapd,
    private readonly clock: ManualClock,
    readonly domain = 'corp.test',
    readonly name = 'office14-corp',
  ) {}

  membership() {
    return {
      url: this.slapd.url,
      domain: this.domain,
      base: this.slapd.base,
      bindDn: this.slapd.userDn,
      password: this.slapd.userPassword,
    };
  }

  /** Re-issues and publishes the object when none is published or it ends within the warning period. */
  async refreshIfDue(): Promise<boolean> {
    if (this.object) {
      const { expiresAt } = activationObjectValidity(this.object);
      if (expiresAt - this.clock.now() > OBJECT_EXPIRY_WARNING_DAYS * DAY) return false;
    }
    const object = await this.authority.createActivationObject({
      group: 'office14',
      domain: this.domain,
      name: this.name,
    });
    await publishEntry(
      { url: this.slapd.url, bindDn: this.slapd.adminDn, password: this.slapd.adminPassword },
      { base: this.slapd.base },
      object.name,
      JSON.stringify(object),
      { replace: true },
    );
    this.object = object;
    this.issued.push(object);
    return true;
  }
}

/** One line per client, for a failure message: what each one's licence is now. */
export function fleetTable(clients: readonly FleetClient[], day: number): string {
  const rows = clients.map((c) => {
    const s: LicenceStatus = c.licence.status();
    const last = s.lastAttempt as { code?: string; message?: string; ok?: boolean } | null;
    return [
      c.name.padEnd(14),
      s.state.padEnd(18),
      String(s.method).padEnd(10),
      String(s.expiresAt).padEnd(26),
      last ? `${last.ok ? 'ok' : (last.code ?? '?')}: ${(last.message ?? '').slice(0, 100)}` : '-',
    ].join(' ');
  });
  return [`day ${day}:`, ...rows].join('\n');
}
