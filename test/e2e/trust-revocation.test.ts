import { afterAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE, ManualClock, decodeHostStatus, decodeRevocationList, hostKeyRefOf } from '@volact/core';
import type { Authority } from '@volact/authority';
import { startReplyTamperingProxy } from '@volact/authority/testing';
import { HostState } from '@volact/kms-host';
import {
  fleetTable,
  newLicence,
  startAuthority,
  startOnlineHost,
  type FleetClient,
  type FleetHost,
} from './trust-fleet.js';

/**
 * Issue 13's revocation bound: a KMS host key revoked at T stops licensing renewing clients
 * within 7 days (plus the product's clock skew) even though the host keeps running — its
 * stapled host status ends and it gets no new one — while a host that is not revoked keeps
 * activating clients throughout; the revoked host's renewal is refused; a host refuses a
 * revocation list older than the one it holds.
 */

const START = Date.UTC(2027, 2, 1, 9);
const STEP = 6 * HOUR; // a running host's renewal check

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('host revocation (issue 13)', () => {
  it('a revoked, still running host is refused by renewing clients within 7 days + skew; a good host keeps licensing', async () => {
    const clock = new ManualClock(START);
    const base = await startAuthority(clock, { threshold: 1, prefix: 'volact-revocation-' });
    cleanups.push(() => base.close());
    const { authority, product } = base;
    const skew = product.policy.maxClockSkewMinutes * MINUTE;

    // Host B talks to the authority through a proxy that can replay an older answer.
    const proxy = await startReplyTamperingProxy(base.authorityUrl);
    cleanups.push(() => proxy.close());
    const rogue = await startOnlineHost(base, 'rogue', base.authorityUrl);
    cleanups.push(() => rogue.close());
    const good = await startOnlineHost(base, 'good', proxy.url);
    cleanups.push(() => good.close());

    const client = (name: string, host: FleetHost): FleetClient => {
      const c = newLicence(base, name);
      c.licence.setKmsHost(host.address());
      return c;
    };
    const atRogue = client('at-rogue', rogue);
    const atGood = client('at-good', good);
    expect((await atRogue.licence.activate()).ok).toBe(true);
    expect((await atGood.licence.activate()).ok).toBe(true);

    // Ten quiet days: both hosts check every 6 hours (what a running host does on its timer).
    // The proxy keeps the good host's answers of the last check, to replay them later.
    let trustBefore: Record<string, unknown> | undefined;
    let statusBefore: Record<string, unknown> | undefined;
    const keep = (reply: Record<string, unknown>) => {
      if (typeof reply.status === 'string' && typeof reply.list === 'string') statusBefore = reply;
      if (Array.isArray(reply.roots)) trustBefore = reply;
      return reply;
    };
    proxy.tamper = keep;
    for (let t = 0; t < 10 * DAY; t += STEP) {
      clock.advance(STEP);
      expect((await rogue.running.checkNow()).warnings).toEqual([]);
      expect((await good.running.checkNow()).warnings).toEqual([]);
    }
    proxy.tamper = (reply) => reply;
    expect(statusBefore, 'the good host fetched its status through the proxy').toBeDefined();
    expect(trustBefore, 'the good host fetched the trust bundle through the proxy').toBeDefined();
    const heldBefore = decodeRevocationList(Buffer.from(statusBefore!.list as string, 'base64'));
    // The status the rogue host staples from now on: the one it fetched at its last check.
    const rogueStatus = decodeHostStatus(Buffer.from(HostState.open(rogue.dir).trust.hostStatus!, 'base64'));
    expect(rogueStatus.hostKeyRef).toEqual(hostKeyRefOf(rogue.publicKey()));
    expect(rogueStatus.nextUpdate).toBeLessThanOrEqual(clock.now() + 7 * DAY);
    expect((await atRogue.licence.activate()).ok).toBe(true);

    // --- T: the publisher revokes the rogue host's key ---
    const T = clock.now() + HOUR;
    clock.set(T);
    await revokeHost(authority, rogue);
    const listAfter = decodeRevocationList((await authority.revocationList()).encoded);
    expect(listAfter.listVersion).toBeGreaterThan(heldBefore.listVersion);
    expect(listAfter.entries.some((e) => e.kind === 'host' && e.subject.equals(hostKeyRefOf(rogue.publicKey())))).toBe(
      true,
    );
    // The revoked host asks for a new status: refused, by name.
    const refusedStatus = await authority.hostStatus(rogue.certificate().encoded).catch((err: unknown) => err);
    expect(codeOf(refusedStatus)).toBe('HOST_REVOKED');

    // --- after T, hour by hour: the rogue host keeps running and answering; the hosts check every
    // 6 hours, the rogue host's client renews every hour ---
    let refusedAt: number | null = null;
    let lastAnsweredAt = 0;
    let refusal = '';
    let renewalRefused = '';
    let staleRefused = false;
    let n = 0;
    while (clock.now() < T + 9 * DAY) {
      clock.advance(HOUR);
      n++;
      const now = clock.now();
      const hostsCheck = n % (STEP / HOUR) === 0;
      if (hostsCheck) {
        // The rogue host's check: refused its status, and its renewal once due (half-life, day 15).
        const check = await rogue.running.checkNow();
        expect(check.revoked).toBe(true);
        if (check.renewalError) renewalRefused = codeOf(check.renewalError) ?? (check.renewalError as Error).message;
        else expect(check.renewal).toMatchObject({ renewed: false });
        // It keeps stapling the last status it got before T.
        expect(HostState.open(rogue.dir).trust.hostStatus).toBe(rogueStatus.encoded.toString('base64'));

        // The good host's check; once, while the old answers are still within their time, the
        // proxy replays the trust bundle and the host status from before T: a list older than
        // the one the host holds is refused, and the host keeps what it has.
        if (n === 4 * (STEP / HOUR)) {
          const heldNow = HostState.open(good.dir).trust;
          proxy.tamper = (reply) =>
            typeof reply.status === 'string' ? statusBefore : Array.isArray(reply.roots) ? trustBefore : reply;
          const replayed = await good.running.checkNow();
          proxy.tamper = (reply) => reply;
          expect(replayed.warnings.join('\n')).toMatch(/REVOCATION_LIST_STALE/);
          const after = HostState.open(good.dir).trust;
          expect(after.revocationList).toBe(heldNow.revocationList);
          expect(after.hostStatus).toBe(heldNow.hostStatus);
          expect(decodeRevocationList(Buffer.from(after.revocationList!, 'base64')).listVersion).toBeGreaterThan(
            heldBefore.listVersion,
          );
          staleRefused = true;
        }
        expect((await good.running.checkNow()).warnings).toEqual([]);

        // The good host licenses its renewing client and a new one at every check.
        const renewed = await atGood.licence.activate();
        expect(renewed.ok, fleetTable([atGood], n)).toBe(true);
        const newcomer = client(`new-${n}`, good);
        expect((await newcomer.licence.activate()).ok, fleetTable([newcomer], n)).toBe(true);
      }

      // The client of the rogue host renews.
      const outcome = await atRogue.licence.activate();
      if (outcome.ok) {
        lastAnsweredAt = now;
        expect(refusedAt, `answered again at ${new Date(now).toISOString()} after a refusal`).toBeNull();
        // Answered only while the stapled status holds.
        expect(now).toBeLessThanOrEqual(rogueStatus.nextUpdate + skew);
      } else {
        if (refusedAt === null) {
          refusedAt = now;
          refusal = `${outcome.code}: ${outcome.message}`;
        }
        expect(['KMS_HOST_REVOKED', 'KMS_HOST_STATUS_MISSING']).toContain(outcome.code);
        // Refused, and it keeps the licence it had (evidence stored before stays until its own end).
        expect(atRogue.licence.status().state).toBe('licensed');
      }
    }
    expect(refusedAt, 'the rogue host was never refused').not.toBeNull();
    // The bound: no answer of the revoked host is taken past T + 7 days + skew.
    expect(lastAnsweredAt).toBeLessThanOrEqual(T + 7 * DAY + skew);
    expect(refusedAt!).toBeLessThanOrEqual(T + 7 * DAY + skew);
    // It was answered after T, until its stapled status ended (+ skew): the bound is the status.
    expect(refusedAt!).toBeGreaterThan(T + DAY);
    expect(lastAnsweredAt).toBeGreaterThanOrEqual(rogueStatus.nextUpdate + skew - HOUR);
    expect(refusedAt!).toBe(lastAnsweredAt + HOUR);
    expect(refusal).toMatch(/KMS_HOST_(REVOKED|STATUS_MISSING)/);
    expect(renewalRefused, "the revoked host's renewal was refused").toBe('HOST_REVOKED');
    expect(staleRefused).toBe(true);

    // A newcomer at the rogue host is refused as well; the good host still licenses.
    const lateAtRogue = await client('late-rogue', rogue).licence.activate();
    expect(lateAtRogue.ok).toBe(false);
    expect(['KMS_HOST_REVOKED', 'KMS_HOST_STATUS_MISSING']).toContain(lateAtRogue.code);
    expect((await client('late-good', good).licence.activate()).ok).toBe(true);
  }, 120_000);
});

function codeOf(err: unknown): string | undefined {
  const e = err as { code?: string; authorityCode?: string };
  return e.authorityCode ?? e.code;
}

async function revokeHost(authority: Authority, host: FleetHost): Promise<void> {
  const result = await authority.revokeHost(host.certificate().serial, { reason: 'key leaked' });
  expect(result).toMatchObject({ kind: 'host', alreadyRevoked: false });
}
