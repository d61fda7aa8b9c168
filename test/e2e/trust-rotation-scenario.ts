import { existsSync } from 'node:fs';
import type { Authority } from '@volact/authority';
import { expect } from 'vitest';
import {
  DAY,
  ManualClock,
  decodeDelegation,
  decodeHostStatus,
  decodeRevocationList,
  keyFingerprint,
  parseConfirmationId,
} from '@volact/core';
import {
  activationToken,
  fleetTable,
  newLicence,
  oemMarker,
  reopen,
  startAuthority,
  startOnlineHost,
  type FleetClient,
  type FleetHost,
} from './trust-fleet.js';

/**
 * Issue 13's "Done when", the scenario of trust-rotation.test.ts (root in a file) and
 * trust-rotation-token.test.ts (root in a PKCS#11 token): a full root rotation over two simulated
 * years, the clock injected. A fleet of KMS, MAK, phone, OEM and token clients (the directory
 * client: trust-rotation-directory.test.ts), all made from the product config exported on day 0
 * (one root) and never given another, stays licensed at every step while the publisher runs the
 * ceremony (prepare ~day 200, publish ~230, switch ~260, retire ~450); a client that only knows
 * the old root accepts a host certified under the new one; after retire nothing new carries the
 * old root's key ID; evidence made under the old root keeps verifying.
 */

const START = Date.UTC(2027, 0, 4, 9);
const DAYS = 730;
type Step = 'prepare' | 'publish' | 'switch' | 'retire';
const CEREMONY: Record<number, Step> = { 200: 'prepare', 230: 'publish', 260: 'switch', 450: 'retire' };

const hex = (raw: Buffer) => keyFingerprint(raw).toString('hex');

/**
 * The fleet's two years, a step of `stepDays` at a time: the ceremony steps run on the first
 * step at or after their day; clients renew when due and are checked at every step.
 */
export async function rotationOverTwoYears(options: {
  stepDays: number;
  /** How often the host checks (default: every step). */
  hostCheckDays?: number;
  signer?: string;
  cleanups: (() => Promise<void> | void)[];
}): Promise<void> {
  const { cleanups } = options;
  const hostCheckDays = options.hostCheckDays ?? options.stepDays;
  let lastHostCheck = 0;
  const clock = new ManualClock(START);
  const base = await startAuthority(clock, {
    threshold: 3,
    prefix: 'volact-rotation-',
    ...(options.signer ? { signer: options.signer } : {}),
  });
  cleanups.push(() => base.close());
  const { authority, product } = base;
  const oldRoot = hex(authority.rootPublicKeyRaw);
  expect(product.authority.roots ?? [{ publicKey: product.authority.rootPublicKey }]).toHaveLength(1);

  const host: FleetHost = await startOnlineHost(base, 'kms1', base.authorityUrl);
  cleanups.push(() => host.close());
  expect(host.issuer()).toBe(oldRoot);

  // --- the fleet, day 0, every client from the day-0 product config ---
  /** Clients that renew on their schedule (runDue); the phone-activated one is isolated: never. */
  const renewing: FleetClient[] = [];
  const fleet: FleetClient[] = [];
  const add = (c: FleetClient, renews = true) => {
    fleet.push(c);
    if (renews) renewing.push(c);
    return c;
  };

  const kms = [1, 2, 3].map((i) => add(newLicence(base, `kms-${i}`)));
  for (const c of kms) c.licence.setKmsHost(host.address());
  for (const c of kms) await c.licence.activate();
  for (const c of kms.slice(0, 2)) await c.licence.activate(); // below the threshold at first

  const mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 20 })).key;
  for (const i of [1, 2]) {
    const c = add(newLicence(base, `mak-${i}`));
    c.licence.installKey(mak);
    expect((await c.licence.activate()).ok).toBe(true);
  }

  const phone = add(newLicence(base, 'phone'), false);
  phone.licence.installKey(mak);
  const phoneCid = (await authority.confirm(phone.licence.installationId())).confirmationId;
  expect(phone.licence.installConfirmation(phoneCid.replace(/-/g, ' ')).state).toBe('licensed');

  const oem = add(newLicence(base, 'oem'));
  const marker = await oemMarker(authority, product, oem.hardwareId, clock.now());
  expect(oem.licence.installOemMarker(marker)).toMatchObject({ state: 'licensed', method: 'oem' });

  const tokenClient = add(newLicence(base, 'token'));
  const token = await activationToken(authority, tokenClient.hardwareId, clock.now(), DAYS + 60);
  expect(tokenClient.licence.installToken(token)).toMatchObject({ state: 'licensed', method: 'token' });

  const assertLicensed = (day: number) => {
    const bad = fleet.filter((c) => c.licence.status().state !== 'licensed');
    if (bad.length > 0) expect.fail(`not licensed on day ${day}:\n${fleetTable(fleet, day)}`);
  };
  assertLicensed(0);

  // --- two years, a day at a time ---
  let newRoot: string | undefined;
  let nextRoot: string | undefined;
  let switchedAt = Infinity;
  const late: FleetClient[] = [];
  for (let day = options.stepDays; day <= DAYS; day += options.stepDays) {
    clock.advance(options.stepDays * DAY);
    const passed = (mark: number) => day - options.stepDays < mark && mark <= day;
    const step = Object.entries(CEREMONY).find(([d]) => passed(Number(d)))?.[1];
    if (step === 'switch') {
      // Before the switch: the KMS clients (day-0 config) already learned the next root from
      // the transition record the host staples since publish.
      for (const c of kms) {
        expect(c.licence.status().trust.roots, c.name).toEqual(
          expect.arrayContaining([expect.objectContaining({ keyId: nextRoot, source: 'transition' })]),
        );
      }
    }
    if (step) {
      const stepRoot = await rotate(authority, step);
      if (step === 'prepare') {
        nextRoot = stepRoot;
        expect(hex(authority.rootPublicKeyRaw)).toBe(oldRoot); // nothing changes yet
        // Both roots where the authority was told to keep them: files, or the token.
        const roots = (await authority.rootStatus()).roots;
        expect(roots).toHaveLength(2);
        for (const r of roots) expect(r.signer).toMatch(options.signer ? /^pkcs11:/ : /^file$/);
      }
      if (step === 'switch') {
        switchedAt = clock.now();
        newRoot = hex(authority.rootPublicKeyRaw);
        expect(newRoot).toBe(nextRoot);
        expect(newRoot).not.toBe(oldRoot);
        // The online keys stay: the one the old root certified (while it was valid) signs
        // confirmations on, so the day-0 config verifies phone CIDs with nothing learned.
        const current = (await authority.rootStatus()).onlineKeys.find((k) => k.state === 'current');
        expect(current?.issuerKeyId).toBe(oldRoot);
      }
    }
    // The host's check (every 6 hours in a running host; here every `hostCheckDays` and on each
    // ceremony day): trust bundle and status, re-certified past half-life, and at once after a
    // switch, even with half its certificate left.
    if (step || day - lastHostCheck >= hostCheckDays) {
      lastHostCheck = day;
      const check = await host.running.checkNow();
      if (check.warnings.length > 0 || check.renewalError) {
        expect.fail(
          `host check on day ${day}: ${check.warnings.join('; ')} ${(check.renewalError as Error | undefined)?.message ?? ''}`,
        );
      }
      if (step === 'switch') {
        expect(check).toMatchObject({ rootChanged: true, renewal: { renewed: true } });
        expect(host.issuer()).toBe(newRoot);
      }
      if (newRoot !== undefined) expect(host.issuer()).toBe(newRoot);
      else expect(host.issuer()).toBe(oldRoot);
    }

    for (const c of renewing) await c.licence.runDue();
    assertLicensed(day);

    if (step === 'switch') {
      // A client that knows only the old root (the day-0 config), meeting the host for the
      // first time after the switch: it learns the transition from the host's answer.
      const fresh = add(newLicence(base, 'kms-late'));
      fresh.licence.setKmsHost(host.address());
      const outcome = await fresh.licence.activate();
      expect(outcome, fleetTable([fresh], day)).toMatchObject({ ok: true, status: { state: 'licensed' } });
      expect(outcome.status.trust.roots).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ keyId: oldRoot, source: 'config' }),
          expect.objectContaining({ keyId: newRoot, source: 'transition' }),
        ]),
      );
      expect(outcome.status.evidence).toMatchObject({ method: 'kms', signedBy: newRoot, root: newRoot });
      late.push(fresh);
      // And a MAK installation activated online now: the answer carries what it needs.
      const makLate = add(newLicence(base, 'mak-late'));
      makLate.licence.installKey(mak);
      expect((await makLate.licence.activate()).ok, fleetTable([makLate], day)).toBe(true);
      late.push(makLate);
    }

    if (step === 'retire') {
      // The old root's private key is gone from the data directory; its validity has an end.
      const old = (await authority.rootStatus()).roots.find((r) => r.keyId === oldRoot)!;
      expect(old).toMatchObject({ state: 'retired', heldHere: false });
      if (!options.signer) expect(existsSync(old.where)).toBe(false);
      expect(old.validUntil).not.toBeNull();
    }

    if (passed(600)) {
      // Long after retire, a day-0-config installation meets the host for the first time: the
      // transition the old root signed while it was valid still leads it to the new root.
      const afterRetire = add(newLicence(base, 'kms-after-retire'));
      afterRetire.licence.setKmsHost(host.address());
      const outcome = await afterRetire.licence.activate();
      expect(outcome, fleetTable([afterRetire], day)).toMatchObject({ ok: true, status: { state: 'licensed' } });
      expect(outcome.status.evidence).toMatchObject({ method: 'kms', root: newRoot });
      late.push(afterRetire);
    }
  }

  // --- after retire: nothing newly signed carries the old root's key ID ---
  expect(newRoot).toBeDefined();
  expect(host.issuer()).toBe(newRoot);
  const objectAfterRetire = await authority.createActivationObject({
    group: 'office14',
    domain: 'corp.test',
    name: 'office14-corp',
  });
  expect(objectAfterRetire.issuer).toBe(newRoot);
  const oemAfter = JSON.parse(await oemMarker(authority, product, 'hw-x', clock.now())) as {
    certificate: { issuer: string };
  };
  expect(oemAfter.certificate.issuer).toBe(newRoot);
  const tokenAfter = JSON.parse(await activationToken(authority, 'hw-y', clock.now(), 30)) as {
    caCertificate: { issuer: string };
  };
  expect(tokenAfter.caCertificate.issuer).toBe(newRoot);
  expect((await authority.revocationList()).issuerKeyId).toBe(newRoot);
  expect(
    decodeHostStatus((await authority.hostStatus(host.certificate().encoded)).status).issuerKeyId.toString('hex'),
  ).toBe(newRoot);
  // Online keys made since the switch are certified by the new root (older ones sign until their end).
  const ring = await authority.rootStatus();
  for (const k of ring.onlineKeys.filter((o) => Date.parse(o.validFrom) >= switchedAt)) {
    expect(k.issuerKeyId).toBe(newRoot);
  }
  // What /v1/trust hands out: the old root with its end, the records signed since by the new root.
  const trust = (await (await fetch(`${base.authorityUrl}/v1/trust`)).json()) as {
    roots: { keyId: string; validUntil?: string | null; state: string }[];
    delegations: string[];
    revocationList: string;
  };
  expect(trust.roots.find((r) => r.keyId === oldRoot)?.validUntil).toBeTruthy();
  expect(decodeRevocationList(Buffer.from(trust.revocationList, 'base64')).issuerKeyId.toString('hex')).toBe(newRoot);
  for (const d of trust.delegations.map((b) => decodeDelegation(Buffer.from(b, 'base64')))) {
    if (d.validFrom >= switchedAt) expect(d.issuerKeyId.toString('hex')).toBe(newRoot);
  }

  // --- evidence made under the old root still verifies, read afresh from each store ---
  // (status().evidence.root: the root that anchors what licenses the installation now)
  expect(parseConfirmationId(phoneCid).issuedDay).toBe(Math.floor(START / DAY));
  const anchors: string[] = [];
  for (const c of fleet) {
    const again = reopen(base, c).status();
    if (again.state !== 'licensed') expect.fail(`${c.name} read afresh:\n${fleetTable([c], DAYS)}`);
    anchors.push(
      `${c.name}: ${again.evidence?.method} signed by ${again.evidence?.signedBy} under ${again.evidence?.root}`,
    );
  }
  const anchorOf = (name: string) =>
    reopen(
      base,
      fleet.find((c) => c.name === name)!,
    ).status().evidence?.root;
  // Made on day 0 under the old root, retired on day 450: still licensing on day 730.
  // (MAK and phone: a CID of the old root's online key; OEM and token: certificates of the old root.)
  // The MAK installation activated after the switch too: the switch keeps the online keys, so its
  // CID is by the online key the old root certified while valid (in the day-0 config).
  for (const name of ['mak-1', 'mak-2', 'phone', 'oem', 'token', 'mak-late'])
    expect(anchorOf(name), anchors.join('\n')).toBe(oldRoot);
  // KMS clients renewed at the re-certified host: anchored in the new root, learned by transition.
  for (const name of ['kms-1', 'kms-2', 'kms-3', 'kms-late', 'kms-after-retire'])
    expect(anchorOf(name), anchors.join('\n')).toBe(newRoot);
  expect(late).toHaveLength(3);
}

/** One ceremony step at the authority (what `volact authority root rotate --step` runs): done once, a no-op again. */
async function rotate(authority: Authority, step: Step): Promise<string> {
  const result = await authority.rotateRoot(step);
  expect(result).toMatchObject({ step, done: true });
  expect(await authority.rotateRoot(step)).toMatchObject({ step, done: false });
  return result.root.keyId;
}
