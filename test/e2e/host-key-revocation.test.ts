import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Authority, createAuthorityServer } from '@volact/authority';
import { Licence } from '@volact/client';
import { DAY, HOUR, ManualClock } from '@volact/core';
import { HostState, KmsHostError, activateHostOnline, startKmsHost, type RunningKmsHost } from '@volact/kms-host';

/**
 * Revoking a KMS host key at the authority must stop the host licensing clients within a
 * bounded time: online host certificates last 30 days, the host renews at half-life, and the
 * renewal of a revoked key is refused. Time is a ManualClock shared by authority, host and clients.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a revoked KMS host key stops licensing clients within 30 days', () => {
  it('renewal at half-life is refused for the revoked key; past the certificate end new clients are refused', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const root = mkdtempSync(join(tmpdir(), 'volact-revoke-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const authority = Authority.init(join(root, 'authority'), { clock });
    cleanups.push(() => authority.close());
    await authority.addGroup({ name: 'office14', threshold: 1 });
    const { key } = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    const api = createAuthorityServer(authority, { clock });
    await api.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => api.close());
    const authorityUrl = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;

    const hostDir = join(root, 'host');
    const t0 = clock.now();
    const first = await activateHostOnline(HostState.installKey(hostDir, key, 'host-hw-1', t0), authorityUrl, {
      clock,
    });
    expect(first.expiresAt).toBe(t0 + 30 * DAY); // the default online certificate: 30 days, not 365
    let host: RunningKmsHost = await startKmsHost({
      dataDir: hostDir,
      listen: { host: '127.0.0.1', port: 0 },
      clock,
      flushIntervalMs: 50,
    });
    cleanups.push(() => host.close());
    const product = await authority.productConfig('office14');
    const client = (name: string) => {
      const licence = Licence.init({ stateDir: join(root, 'clients', name), product, hardwareId: `hw-${name}`, clock });
      licence.setKmsHost(`127.0.0.1:${host.address.port}`);
      return licence;
    };
    expect((await client('c1').activate()).ok).toBe(true);

    // Before half-life nothing happens; past it the host renews (free) for another 30 days.
    clock.advance(14 * DAY);
    expect(await host.renewCertificateIfDue()).toMatchObject({ renewed: false });
    clock.advance(1 * DAY + HOUR);
    const renewed = await host.renewCertificateIfDue();
    expect(renewed).toEqual({ renewed: true, expiresAt: clock.now() + 30 * DAY });

    // The publisher revokes the key; the host's next renewal is refused by name.
    const revokedAt = clock.now();
    await authority.revokeKey(key);
    clock.advance(15 * DAY + HOUR);
    const refused = await host.renewCertificateIfDue().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(KmsHostError);
    expect((refused as KmsHostError).authorityCode).toBe('KEY_REVOKED');
    // Until its certificate ends the host still licenses: the bound is that certificate's end.
    expect(renewed.expiresAt - revokedAt).toBeLessThanOrEqual(30 * DAY);
    // (its 6-hourly check, by hand: a revoked KMS host key is not a revoked host key, so the
    // authority still gives the host a status, which clients require: docs/trust.md "Revocation")
    await host.checkNow();
    expect((await client('c2').activate()).ok).toBe(true);

    // Past it, a new client is refused, and the host cannot start again.
    clock.set(renewed.expiresAt + 1);
    const late = await client('c3').activate();
    expect(late.ok).toBe(false);
    expect(late.code).toBe('KMS_HOST_ERROR'); // the host itself refuses: its certificate ended
    expect(late.message).toContain('host certificate expired');
    await host.close();
    const restart = await startKmsHost({ dataDir: hostDir, listen: { host: '127.0.0.1', port: 0 }, clock }).catch(
      (err: unknown) => err,
    );
    expect((restart as KmsHostError).code).toBe('HOST_CERTIFICATE_EXPIRED');
    host = { close: async () => undefined } as unknown as RunningKmsHost;
  }, 60_000);
});
