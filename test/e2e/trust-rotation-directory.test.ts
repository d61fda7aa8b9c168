import { afterAll, describe, expect, it } from 'vitest';
import { DAY, ManualClock, keyFingerprint } from '@volact/core';
import { startTestSlapd } from '@volact/directory/testing';
import { DirectoryPublisher, fleetTable, newLicence, startAuthority } from './trust-fleet.js';

/**
 * Issue 13's "Done when", the directory client of the fleet: a member installation made from
 * the product config of day 0 (one root), activated by the activation object published in a
 * real slapd, stays licensed over two years while the publisher rotates the root (prepare ~day
 * 200, publish ~230, switch ~260, retire ~450) and re-issues the object before each one ends,
 * as `authority activation-object create` + `directory publish --replace` would.
 */

const START = Date.UTC(2027, 0, 4, 9);
const DAYS = 730;
const CEREMONY: Record<number, 'prepare' | 'publish' | 'switch' | 'retire'> = {
  200: 'prepare',
  230: 'publish',
  260: 'switch',
  450: 'retire',
};

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('root rotation over two years: directory-based activation (issue 13)', () => {
  it('a member made from the day-0 config stays licensed by objects re-issued across the switch', async () => {
    const clock = new ManualClock(START);
    const slapd = await startTestSlapd();
    cleanups.push(() => slapd.stop());
    const base = await startAuthority(clock, { prefix: 'volact-rotation-dir-' });
    cleanups.push(() => base.close());
    const { authority } = base;
    const oldRoot = keyFingerprint(authority.rootPublicKeyRaw).toString('hex');

    const publisher = new DirectoryPublisher(authority, slapd, clock);
    await publisher.refreshIfDue();
    const member = newLicence(base, 'directory', { memberDomain: 'corp.test' });
    member.licence.joinDomain(publisher.membership());
    member.licence.setActType('directory');
    expect((await member.licence.activate()).status).toMatchObject({ state: 'licensed', method: 'directory' });

    for (let day = 1; day <= DAYS; day++) {
      clock.advance(DAY);
      const step = CEREMONY[day];
      if (step) expect(await authority.rotateRoot(step)).toMatchObject({ step, done: true });
      await publisher.refreshIfDue();
      await member.licence.runDue();
      if (member.licence.status().state !== 'licensed') {
        const issuers = publisher.issued.map((o) => `${o.issuer}${o.issuer === oldRoot ? ' (old root)' : ''}`);
        expect.fail(
          `not licensed on day ${day}:\n${fleetTable([member], day)}\nobjects' issuers: ${issuers.join(', ')}`,
        );
      }
    }
    // The objects published after the switch are the new root's; the member took them.
    const last = publisher.issued.at(-1)!;
    expect(last.issuer).not.toBe(oldRoot);
    expect(member.licence.status().directoryObject).toMatchObject({ name: 'office14-corp', domain: 'corp.test' });
  }, 120_000);
});
