import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, ManualClock, generateSigningKeyPair, makeInstallationId, parseKey } from '@volact/core';
import { CLI_PRINCIPAL, type Principal } from '../access/principal.js';
import { Authority } from '../authority.js';
import { AuthorityError, type AuthorityErrorCode } from '../errors.js';
import { DB_FILE } from '../data-dir.js';
import type { KeySummary } from './types.js';

async function refusal(promise: Promise<unknown>): Promise<AuthorityError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthorityError);
    return err as AuthorityError;
  }
  throw new Error('expected a refusal');
}
const codeOf = async (p: Promise<unknown>): Promise<AuthorityErrorCode> => (await refusal(p)).code;

const ANN: Principal = {
  kind: 'user',
  id: 'usr_ann',
  name: 'ann@publisher.example',
  userId: 'usr_ann',
  orgId: null,
  role: 'owner',
  scopes: ['publisher:*'],
};

describe('organisations', () => {
  let dir: string;
  let dataDir: string;
  let clock: ManualClock;
  let authority: Authority;
  let groupId: string;
  const sql = () => new Database(join(dataDir, DB_FILE));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-orgs-'));
    dataDir = join(dir, 'a');
    clock = new ManualClock(Date.UTC(2026, 0, 10, 12));
    authority = Authority.init(dataDir, { clock });
    groupId = (await authority.addGroup({ name: 'office14', threshold: 5 })).id;
  });
  afterEach(async () => {
    await authority.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const orgs = () => authority.organisations;
  const eventsOf = (keyId: string) => {
    const db = sql();
    try {
      return db.prepare('SELECT type, org_id, data FROM webhook_events WHERE key_id = ? ORDER BY seq').all(keyId) as {
        type: string;
        org_id: string;
        data: string;
      }[];
    } finally {
      db.close();
    }
  };

  it('creates organisations with checked fields (ORG_INVALID names the field), audited with the actor', async () => {
    const bad = async (input: Parameters<ReturnType<typeof orgs>['create']>[0], field: string) => {
      const err = await refusal(orgs().create(input, ANN));
      expect(err.code).toBe('ORG_INVALID');
      expect(err.field).toBe(field);
    };
    await bad({ name: '  ' }, 'name');
    await bad({ name: 'x'.repeat(201) }, 'name');
    await bad({ name: 'Contoso', externalRef: 'r'.repeat(101) }, 'externalRef');
    await bad({ name: 'Contoso', contacts: Array.from({ length: 21 }, (_, i) => ({ name: `c${i}` })) }, 'contacts');
    await bad({ name: 'Contoso', contacts: [{ name: 'Bo', email: 'not-an-address' }] }, 'contacts[0].email');
    const org = await orgs().create(
      { name: ' Contoso ', externalRef: 'EA-123', contacts: [{ name: 'Bo', email: 'bo@contoso.example' }] },
      ANN,
    );
    expect(org).toMatchObject({ name: 'Contoso', externalRef: 'EA-123', keyCount: 0 });
    expect(org.id).toMatch(/^org_[a-z0-9]+$/);
    expect(await orgs().get(org.id)).toEqual(org);
    expect(await codeOf(orgs().get('org_nope'))).toBe('ORG_NOT_FOUND');
    const updated = await orgs().update(org.id, { externalRef: null }, ANN);
    expect(updated.externalRef).toBeNull();
    expect(await codeOf(orgs().update('org_nope', { name: 'x' }, ANN))).toBe('ORG_NOT_FOUND');
    const rows = (await orgs().audit({ orgId: org.id, limit: 10 })).items;
    expect(rows.map((r) => [r.action, r.actor])).toEqual([
      ['org.update', ANN.name],
      ['org.create', ANN.name],
    ]);
    const listed = await orgs().list({ limit: 1 });
    expect(listed.items.map((o) => o.id)).toEqual(['org_default']);
    const next = await orgs().list({ limit: 1, cursor: listed.nextCursor as string });
    expect(next).toEqual({ items: [updated], nextCursor: null });
  });

  it('mints into an organisation; pages of its keys by cursor cover each once; filters; bad cursor refused', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    expect(await codeOf(orgs().mintKey('org_nope', { type: 'mak', groups: ['office14'], limit: 5 }, ANN))).toBe(
      'ORG_NOT_FOUND',
    );
    const minted: string[] = [];
    for (let i = 0; i < 23; i++) {
      const k =
        i % 4 === 0
          ? await orgs().mintKey(org.id, { type: 'kms-host', groups: ['office14'], note: `Site ${i}` }, ANN)
          : await orgs().mintKey(org.id, { type: 'mak', groups: ['office14'], limit: 10 + i }, ANN);
      expect(k.orgId).toBe(org.id);
      minted.push(k.keyId);
      if (i % 3 === 0) clock.advance(1000); // some keys share a creation time
    }
    await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 2 }); // the default organisation's
    const seen: KeySummary[] = [];
    let cursor: string | undefined;
    do {
      const page = await orgs().listKeys({ orgId: org.id, limit: 5, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(5);
      seen.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.map((k) => k.keyId).sort()).toEqual([...minted].sort());
    expect(new Set(seen.map((k) => k.keyId)).size).toBe(23);
    expect(seen.every((k) => k.orgId === org.id && k.recoverable && k.last5.length === 5)).toBe(true);
    const kms = await orgs().listKeys({ orgId: org.id, type: 'kms-host', group: 'office14' });
    expect(kms.items).toHaveLength(6);
    expect(kms.items[0]).toMatchObject({ type: 'kms-host', groups: ['office14'], limit: 6, used: 0 });
    expect((await orgs().listKeys({ orgId: org.id, q: 'site 1' })).items.map((k) => k.note).sort()).toEqual([
      'Site 12',
      'Site 16',
    ]);
    expect((await orgs().get(org.id)).keyCount).toBe(23);
    expect((await orgs().listKeys({ orgId: 'org_default' })).items).toHaveLength(1);
    expect((await refusal(orgs().listKeys({ orgId: org.id, cursor: 'garbage!' }))).field).toBe('cursor');
    expect((await refusal(orgs().listKeys({ orgId: org.id, limit: 501 }))).field).toBe('limit');
  });

  it('finds a key by id or last five within its organisation; another organisation gets KEY_NOT_FOUND; twins are KEY_AMBIGUOUS', async () => {
    const a = await orgs().create({ name: 'A' }, ANN);
    const b = await orgs().create({ name: 'B' }, ANN);
    const k1 = await orgs().mintKey(a.id, { type: 'mak', groups: ['office14'], limit: 5 }, ANN);
    const k2 = await orgs().mintKey(a.id, { type: 'mak', groups: ['office14'], limit: 5 }, ANN);
    const last5 = k1.key.replace(/-/g, '').slice(-5);
    expect((await orgs().findKey(a.id, last5.toLowerCase())).keyId).toBe(k1.keyId);
    expect((await orgs().findKey(a.id, k1.keyId)).last5).toBe(last5);
    expect((await orgs().findKey(null, k1.keyId)).orgId).toBe(a.id);
    expect(await codeOf(orgs().findKey(b.id, k1.keyId))).toBe('KEY_NOT_FOUND');
    expect(await codeOf(orgs().findKey(b.id, last5))).toBe('KEY_NOT_FOUND');
    expect((await orgs().findKeyByText(k2.key)).keyId).toBe(k2.keyId);
    // Two keys of one organisation ending alike: the last five cannot choose.
    const db = sql();
    db.prepare("UPDATE product_keys SET last5 = '…ZZZZZ' WHERE id IN (?, ?)").run(k1.keyId, k2.keyId);
    db.close();
    expect(await codeOf(orgs().findKey(a.id, 'zzzzz'))).toBe('KEY_AMBIGUOUS');
  });

  it('reveals the minted key, audited with the last five only; a key minted before sealing is KEY_NOT_RECOVERABLE', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const k = await orgs().mintKey(org.id, { type: 'mak', groups: ['office14'], limit: 5, note: 'HQ' }, ANN);
    expect(await orgs().revealKey(k.keyId, ANN)).toEqual({ key: k.key });
    const reveal = (await orgs().audit({ keyId: k.keyId, action: 'key.reveal' })).items;
    expect(reveal).toHaveLength(1);
    expect(reveal[0]).toMatchObject({ actor: ANN.name, orgId: org.id, result: 'OK', keyLast5: k.key.slice(-5) });
    const old = await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 5 });
    const db = sql();
    db.prepare('UPDATE product_keys SET key_sealed = NULL WHERE id = ?').run(old.keyId);
    // No secret in the database's audit rows: neither key, with or without dashes.
    const text = JSON.stringify(db.prepare('SELECT * FROM audit_log').all());
    db.close();
    for (const key of [k.key, old.key]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.replace(/-/g, ''));
    }
    expect((await orgs().findKey(null, old.keyId)).recoverable).toBe(false);
    expect(await codeOf(orgs().revealKey(old.keyId, ANN))).toBe('KEY_NOT_RECOVERABLE');
    expect(await codeOf(orgs().revealKey('nope', ANN))).toBe('KEY_NOT_FOUND');
    expect((await orgs().audit({ keyId: old.keyId, action: 'key.reveal' })).items[0]?.result).toBe(
      'KEY_NOT_RECOVERABLE',
    );
  });

  it('limit and revocation write their events with the change, none when refused; the CLI paths emit too', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const k = await orgs().mintKey(org.id, { type: 'mak', groups: ['office14'], limit: 5 }, ANN);
    const db = sql();
    db.prepare('UPDATE product_keys SET used = 4 WHERE id = ?').run(k.keyId);
    db.close();
    expect(await codeOf(orgs().setLimit(k.keyId, 3, ANN))).toBe('KEY_LIMIT_BELOW_USED');
    expect(eventsOf(k.keyId)).toEqual([]);
    expect(await orgs().setLimit(k.keyId, 50, ANN)).toMatchObject({ limit: 50, used: 4, remaining: 46 });
    await authority.setKeyLimit(k.key, 60); // `key raise` on the data directory
    const raised = eventsOf(k.keyId);
    expect(raised.map((e) => [e.type, e.org_id])).toEqual([
      ['key.limit_raised', org.id],
      ['key.limit_raised', org.id],
    ]);
    expect(JSON.parse(raised[0]!.data)).toEqual({
      keyLast5: k.key.slice(-5),
      limitBefore: 5,
      limitAfter: 50,
      requestId: null,
      limit: 50,
      previousLimit: 5,
    });
    expect(raised.map((e) => e.data).join()).not.toContain(k.key);
    expect((await orgs().revoke(k.keyId, 'contract ended', ANN)).revokedAt).not.toBeNull();
    await authority.revokeKey(k.key); // again: no second event
    expect(eventsOf(k.keyId).filter((e) => e.type === 'key.revoked')).toHaveLength(1);
    const audit = (await orgs().audit({ keyId: k.keyId, action: 'key.' })).items.map((r) => [r.action, r.actor]);
    expect(audit).toContainEqual(['key.limit', ANN.name]);
    expect(audit).toContainEqual(['key.revoke', ANN.name]);
    expect(audit).toContainEqual(['key.mint', ANN.name]);
  });

  it('notes, usage and the usage history per UTC day; installations page', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const k = await orgs().mintKey(org.id, { type: 'mak', groups: ['office14'], limit: 10 }, ANN);
    expect((await orgs().setNote(k.keyId, 'Paris office', ANN)).note).toBe('Paris office');
    expect((await refusal(orgs().setNote(k.keyId, 'n'.repeat(501), ANN))).field).toBe('note');
    const activate = (hw: string) =>
      authority.activateInstallation({
        key: k.key,
        installationId: makeInstallationId({
          kind: 'installation',
          key: parseKey(k.key),
          hardwareId: hw,
          groupIds: [groupId],
        }).text,
        groupId,
      });
    await activate('pc-1');
    await activate('pc-2');
    clock.advance(2 * DAY);
    await activate('pc-3');
    await activate('pc-1'); // again: not new
    const usage = await orgs().usage(org.id);
    expect(usage).toEqual([expect.objectContaining({ keyId: k.keyId, used: 3, limit: 10, remaining: 7, percent: 30 })]);
    const history = await orgs().usageHistory(org.id, { days: 5 });
    expect(history.map((p) => p.day)).toEqual(['2026-01-08', '2026-01-09', '2026-01-10', '2026-01-11', '2026-01-12']);
    expect(history.map((p) => p.activations)).toEqual([0, 0, 2, 0, 1]);
    expect((await orgs().usageHistory(org.id, { keyId: k.keyId })).length).toBe(30);
    expect((await refusal(orgs().usageHistory(org.id, { days: 367 }))).field).toBe('days');
    const other = await orgs().create({ name: 'Other' }, ANN);
    expect(await codeOf(orgs().usageHistory(other.id, { keyId: k.keyId }))).toBe('KEY_NOT_FOUND');
    const first = await orgs().installations(k.keyId, { limit: 2 });
    const rest = await orgs().installations(k.keyId, { limit: 2, cursor: first.nextCursor as string });
    expect([...first.items, ...rest.items]).toHaveLength(3);
    expect(rest.nextCursor).toBeNull();
    // The decisions' audit rows name the key and its organisation.
    const rows = (await orgs().audit({ orgId: org.id, action: 'installation.' })).items;
    expect(rows).toHaveLength(4);
    expect(rows.every((r) => r.keyId === k.keyId)).toBe(true);
  });

  it('a KMS host key counts its hosts: usage, history per day, hosts page, audit rows with key and organisation', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const k = await orgs().mintKey(org.id, { type: 'kms-host', groups: ['office14'], hosts: 4 }, ANN);
    const activate = (hardwareId: string) =>
      authority.activateHost({ hostKey: k.key, hostPublicKey: generateSigningKeyPair().publicKeyRaw, hardwareId });
    await activate('hw-1');
    clock.advance(DAY);
    await activate('hw-2');
    await activate('hw-3');
    expect(await orgs().usage(org.id)).toEqual([
      expect.objectContaining({ keyId: k.keyId, type: 'kms-host', used: 3, limit: 4, percent: 75 }),
    ]);
    expect((await orgs().usageHistory(org.id, { days: 2 })).map((p) => p.activations)).toEqual([1, 2]);
    const first = await orgs().hosts(k.keyId, { limit: 2 });
    const rest = await orgs().hosts(k.keyId, { limit: 2, cursor: first.nextCursor as string });
    expect([...first.items, ...rest.items].map((h) => h.activationCount)).toEqual([1, 1, 1]);
    expect((await orgs().findKey(org.id, k.keyId)).used).toBe(3);
    expect(await codeOf(orgs().setLimit(k.keyId, 2, ANN))).toBe('KEY_LIMIT_BELOW_USED');
    const rows = (await orgs().audit({ keyId: k.keyId, action: 'host.activate' })).items;
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.orgId === org.id)).toBe(true);
  });

  it('issued artefacts are kept with their organisation and audited with the actor', async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const object = await orgs().createActivationObject(
      org.id,
      { group: 'office14', domain: 'corp.contoso.example', name: 'office' },
      ANN,
    );
    const oem = await orgs().issueOemCertificate(
      org.id,
      { manufacturer: 'Fabrikam', publicKeyRaw: generateSigningKeyPair().publicKeyRaw, groups: ['office14'], days: 30 },
      CLI_PRINCIPAL,
    );
    expect(object).toMatchObject({ kind: 'activation-object', orgId: org.id, name: 'office', groups: ['office14'] });
    expect(oem).toMatchObject({ kind: 'oem-certificate', name: 'Fabrikam' });
    expect(oem.subjectKeyId).toMatch(/^[0-9a-f]{16}$/);
    const all = await orgs().artefacts(org.id, {});
    expect(all.items.map((a) => a.id).sort()).toEqual([oem.id, object.id].sort());
    expect((all.items.find((a) => a.id === object.id)?.document as { name: string }).name).toBe('office');
    expect(all.items).toHaveLength(2);
    expect((await orgs().artefacts(org.id, { kind: 'oem-certificate' })).items).toEqual([oem]);
    expect((await orgs().artefacts('org_default', {})).items).toEqual([]);
    const audit = (await orgs().audit({ orgId: org.id, action: 'oem-certificate.' })).items;
    expect(audit[0]?.actor).toBe('cli');
    expect(
      await codeOf(
        orgs().createActivationObject('org_nope', { group: 'office14', domain: 'a.example', name: 'x' }, ANN),
      ),
    ).toBe('ORG_NOT_FOUND');
  });

  it("the phone operator's call is audited with the operator's name, refused or not", async () => {
    const org = await orgs().create({ name: 'Contoso' }, ANN);
    const k = await orgs().mintKey(org.id, { type: 'mak', groups: ['office14'], limit: 10 }, ANN);
    const iid = makeInstallationId({
      kind: 'installation',
      key: parseKey(k.key),
      hardwareId: 'pc-9',
      groupIds: [groupId],
    });
    const confirmation = await orgs().confirmByOperator(iid.text, ANN);
    expect(confirmation.kind).toBe('installation');
    expect(await codeOf(orgs().confirmByOperator('12345', ANN))).toMatch(/INSTALLATION_ID|IID|INVALID/);
    const rows = (await orgs().audit({ actor: ANN.name, action: 'operator.confirm' })).items;
    expect(rows.map((r) => r.result)).toEqual([expect.not.stringMatching(/^OK$/), 'OK']);
  });
});
