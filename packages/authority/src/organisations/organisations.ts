import { randomBytes } from 'node:crypto';
import { DAY, KMS_DEFAULTS, keyFingerprint, type KeyType } from '@volact/core';
import type { Principal } from '../access/principal.js';
import {
  createActivationObject,
  issueOemCertificate,
  issueTokenCa,
  type ActivationObjectRequest,
  type OemCertificateRequest,
  type TokenCaRequest,
} from '../certification.js';
import type { AuthorityContext } from '../context.js';
import { AuthorityError, invalidField } from '../errors.js';
import { readKeyText, type KeyReport, type MintKeyRequest, type MintedKey } from '../keys.js';
import { confirmByPhone, type Confirmation } from '../phone-confirmation.js';
import { unseal } from '../sealing.js';
import type { After, ArtefactRecord, KeySummaryRecord, OrganisationRecord } from './store.js';
import {
  DEFAULT_ORG_ID,
  type Artefact,
  type ArtefactKind,
  type AuditQuery,
  type AuditRow,
  type Contact,
  type HostSummary,
  type InstallationSummary,
  type KeyListQuery,
  type KeySummary,
  type MakUsage,
  type Organisation,
  type OrganisationInput,
  type OrganisationsApi,
  type Page,
  type PageQuery,
  type UsagePoint,
} from './types.js';

export { DEFAULT_ORG_ID };

const MAX_NAME = 200;
const MAX_EXTERNAL_REF = 100;
const MAX_CONTACTS = 20;
const MAX_NOTE = 500;
const MAX_REASON = 300;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 500;
const DEFAULT_HISTORY_DAYS = 30;
const MAX_HISTORY_DAYS = 366;
const EMAIL_RE = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;
const KEY_TYPES: readonly KeyType[] = ['kms-host', 'mak', 'retail'];

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));
/** Stored as `…ABCDE`; shown and looked up as the five characters. */
const bareLast5 = (stored: string) => stored.replace(/^…/, '');
const storedLast5 = (ref: string) => `…${ref.replace(/^…/, '').toUpperCase()}`;

/** An opaque cursor: the last row's sort key, base64url JSON. */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

function badCursor(): AuthorityError {
  return invalidField('cursor', 'the cursor is not one this list gave: pass back nextCursor as it came, or omit it');
}

function decodeAfter(cursor: string | undefined): After | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(v) || v.length !== 2 || !Number.isSafeInteger(v[0]) || typeof v[1] !== 'string') throw badCursor();
  return { at: v[0] as number, id: v[1] };
}

function decodeId(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(v) || v.length !== 1 || !Number.isSafeInteger(v[0])) throw badCursor();
  return v[0] as number;
}

function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw invalidField('limit', `a page holds 1 to ${MAX_PAGE} items, got ${String(limit).slice(0, 20)}`);
  }
  return limit;
}

/** Fetches one more than the page to know whether another follows. */
function pageOf<R, T>(rows: R[], limit: number, map: (r: R) => T, key: (r: R) => (string | number)[]): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: more && last !== undefined ? encodeCursor(key(last)) : null };
}

function orgInvalid(field: string, message: string): AuthorityError {
  return invalidField(field, message, 'ORG_INVALID');
}

function checkName(name: unknown): string {
  const text = typeof name === 'string' ? name.trim() : '';
  if (text.length < 1 || text.length > MAX_NAME) {
    throw orgInvalid('name', `an organisation's name is 1 to ${MAX_NAME} characters, got ${text.length}`);
  }
  return text;
}

function checkExternalRef(ref: unknown): string | null {
  if (ref === undefined || ref === null) return null;
  if (typeof ref !== 'string') throw orgInvalid('externalRef', 'the external reference is text');
  const text = ref.trim();
  if (text.length > MAX_EXTERNAL_REF) {
    throw orgInvalid(
      'externalRef',
      `the external reference is at most ${MAX_EXTERNAL_REF} characters, got ${text.length}`,
    );
  }
  return text === '' ? null : text;
}

function checkContacts(contacts: unknown): Contact[] {
  if (contacts === undefined || contacts === null) return [];
  if (!Array.isArray(contacts)) throw orgInvalid('contacts', 'contacts are a list of {name, email?, phone?}');
  if (contacts.length > MAX_CONTACTS) {
    throw orgInvalid('contacts', `an organisation has at most ${MAX_CONTACTS} contacts, got ${contacts.length}`);
  }
  return contacts.map((c: unknown, i): Contact => {
    const at = `contacts[${i}]`;
    if (typeof c !== 'object' || c === null) throw orgInvalid(at, `${at} is not a contact {name, email?, phone?}`);
    const { name, email, phone } = c as Record<string, unknown>;
    const n = typeof name === 'string' ? name.trim() : '';
    if (n.length < 1 || n.length > MAX_NAME)
      throw orgInvalid(`${at}.name`, `${at}.name is 1 to ${MAX_NAME} characters`);
    const out: { name: string; email?: string; phone?: string } = { name: n };
    if (email !== undefined && email !== null && email !== '') {
      if (typeof email !== 'string' || email.length > 254 || !EMAIL_RE.test(email.trim())) {
        throw orgInvalid(`${at}.email`, `${at}.email is not an email address (name@example.com)`);
      }
      out.email = email.trim();
    }
    if (phone !== undefined && phone !== null && phone !== '') {
      if (typeof phone !== 'string' || !/^[0-9+()./ -]{3,40}$/.test(phone.trim())) {
        throw orgInvalid(`${at}.phone`, `${at}.phone is not a telephone number (digits, spaces, + ( ) . / -)`);
      }
      out.phone = phone.trim();
    }
    return out;
  });
}

/** `Name <email>` as the CLI takes a contact (`--contact`). */
export function parseContact(text: string): Contact {
  const m = /^\s*([^<]*?)\s*<([^>]*)>\s*$/.exec(text);
  const contact = m ? { name: m[1] ?? '', email: m[2] ?? '' } : { name: text };
  return (checkContacts([contact]) as [Contact])[0];
}

const toOrganisation = (r: OrganisationRecord): Organisation => ({
  id: r.id,
  name: r.name,
  externalRef: r.externalRef,
  contacts: r.contacts,
  createdAt: iso(r.createdAt),
  keyCount: r.keyCount,
});

const keyLimit = (k: Pick<KeySummaryRecord, 'type' | 'limit'>) =>
  k.limit ?? (k.type === 'kms-host' ? KMS_DEFAULTS.hostLimit : 0);

export interface OrganisationsDeps {
  readonly ctx: AuthorityContext;
}

/** The publisher's customers and what belongs to them: docs/portal.md "Organisations". */
export class Organisations implements OrganisationsApi {
  readonly #ctx: AuthorityContext;

  constructor(deps: OrganisationsDeps) {
    this.#ctx = deps.ctx;
  }

  get #store() {
    return this.#ctx.store.organisations;
  }

  #now(): number {
    return this.#ctx.clock.now();
  }

  async #org(orgId: string): Promise<OrganisationRecord> {
    const org = typeof orgId === 'string' ? await this.#store.get(orgId) : undefined;
    if (!org) throw new AuthorityError('ORG_NOT_FOUND', `no organisation has the id "${String(orgId).slice(0, 60)}"`);
    return org;
  }

  async #groupNames(): Promise<Map<string, string>> {
    return new Map((await this.#ctx.groups.list()).map((g) => [g.id, g.name]));
  }

  #summary(k: KeySummaryRecord, names: Map<string, string>): KeySummary {
    const limit = keyLimit(k);
    return {
      keyId: k.id,
      orgId: k.orgId,
      type: k.type,
      groups: k.groupIds.map((g) => names.get(g) ?? g),
      last5: bareLast5(k.last5),
      limit,
      used: k.used,
      remaining: Math.max(0, limit - k.used),
      activationsPerHost:
        k.type === 'kms-host' ? (k.activationsPerHost ?? KMS_DEFAULTS.activationsPerHost) : k.activationsPerHost,
      createdAt: iso(k.createdAt),
      revokedAt: isoOrNull(k.revokedAt),
      note: k.note,
      recoverable: k.recoverable,
    };
  }

  async #key(keyId: string): Promise<KeySummaryRecord> {
    const k = typeof keyId === 'string' && keyId !== '' ? await this.#store.keyById(keyId) : undefined;
    if (!k) throw new AuthorityError('KEY_NOT_FOUND', `no key has the id "${String(keyId).slice(0, 60)}"`);
    return k;
  }

  async #summaryOf(keyId: string): Promise<KeySummary> {
    return this.#summary(await this.#key(keyId), await this.#groupNames());
  }

  // --- organisations ---

  async create(input: OrganisationInput, by: Principal): Promise<Organisation> {
    const name = checkName(input.name);
    const externalRef = checkExternalRef(input.externalRef);
    const contacts = checkContacts(input.contacts);
    const id = `org_${randomBytes(8).toString('hex')}`;
    const now = this.#now();
    await this.#store.create(
      { id, name, externalRef, contacts, createdAt: now },
      { at: now, action: 'org.create', result: 'OK', orgId: id, actor: by.name, detail: name.slice(0, 200) },
    );
    return toOrganisation(await this.#org(id));
  }

  async list(query: PageQuery & { q?: string }): Promise<Page<Organisation>> {
    const limit = pageLimit(query.limit);
    const rows = await this.#store.list({ q: query.q?.trim(), after: decodeAfter(query.cursor), limit: limit + 1 });
    return pageOf(rows, limit, toOrganisation, (r) => [r.createdAt, r.id]);
  }

  async get(orgId: string): Promise<Organisation> {
    return toOrganisation(await this.#org(orgId));
  }

  async update(orgId: string, patch: Partial<OrganisationInput>, by: Principal): Promise<Organisation> {
    const change: { name?: string; externalRef?: string | null; contacts?: Contact[] } = {};
    if (patch.name !== undefined) change.name = checkName(patch.name);
    if (patch.externalRef !== undefined) change.externalRef = checkExternalRef(patch.externalRef);
    if (patch.contacts !== undefined) change.contacts = checkContacts(patch.contacts);
    const fields = Object.keys(change);
    const ok = await this.#store.update(orgId, change, {
      at: this.#now(),
      action: 'org.update',
      result: 'OK',
      orgId,
      actor: by.name,
      detail: fields.length ? `changed ${fields.join(', ')}` : 'nothing changed',
    });
    if (!ok) throw new AuthorityError('ORG_NOT_FOUND', `no organisation has the id "${String(orgId).slice(0, 60)}"`);
    return this.get(orgId);
  }

  // --- keys ---

  async mintKey(
    orgId: string,
    request: MintKeyRequest & { note?: string },
    by: Principal,
  ): Promise<MintedKey & { orgId: string }> {
    await this.#org(orgId);
    const note = checkNote(request.note);
    const mint: MintKeyRequest & { note?: string } = { ...request };
    delete mint.note;
    const minted = await this.#ctx.keys.mint(mint, { orgId, note, actor: by.name });
    return { ...minted, orgId };
  }

  async listKeys(query: KeyListQuery): Promise<Page<KeySummary>> {
    const limit = pageLimit(query.limit);
    if (query.type !== undefined && !KEY_TYPES.includes(query.type)) {
      throw invalidField('type', `the key type is kms-host, mak or retail, got "${String(query.type).slice(0, 20)}"`);
    }
    const groupId = query.group === undefined ? undefined : (await this.#ctx.groups.find(query.group)).id;
    const q = query.q?.trim();
    const rows = await this.#store.listKeys({
      orgId: query.orgId,
      type: query.type,
      groupId,
      revoked: query.revoked,
      // Five characters may be a key's last five (stored as `…ABCDE`); anything else matches notes only.
      q: q === undefined || q === '' ? undefined : q,
      after: decodeAfter(query.cursor),
      limit: limit + 1,
    });
    const names = await this.#groupNames();
    return pageOf(
      rows,
      limit,
      (k) => this.#summary(k, names),
      (k) => [k.createdAt, k.id],
    );
  }

  async findKey(orgId: string | null, ref: string): Promise<KeySummary> {
    const text = typeof ref === 'string' ? ref.trim() : '';
    const notFound = () =>
      new AuthorityError(
        'KEY_NOT_FOUND',
        `no key ${orgId === null ? '' : `of organisation ${orgId} `}has the id or last five characters "${text.slice(0, 60)}"`,
      );
    const bare = text.replace(/^…/, '');
    if (bare.length === 5) {
      const found = await this.#store.keysByLast5(storedLast5(bare), orgId, 2);
      if (found.length > 1) {
        throw new AuthorityError(
          'KEY_AMBIGUOUS',
          `several keys${orgId === null ? '' : ` of organisation ${orgId}`} end with ${bare.toUpperCase()}: use the key ID`,
        );
      }
      if (found[0]) return this.#summary(found[0], await this.#groupNames());
      throw notFound();
    }
    const k = text === '' ? undefined : await this.#store.keyById(text);
    if (!k || (orgId !== null && k.orgId !== orgId)) throw notFound();
    return this.#summary(k, await this.#groupNames());
  }

  async findKeyByText(key: string): Promise<KeySummary> {
    const parsed = await readKeyText(key, (code, message) => new AuthorityError(code, message));
    const record = await this.#ctx.store.findKeyByHash(this.#ctx.keys.hashOf(parsed));
    if (!record) throw new AuthorityError('KEY_NOT_FOUND', 'that key was not minted by this authority');
    return this.#summaryOf(record.id);
  }

  async keyReport(keyId: string): Promise<KeyReport> {
    const k = await this.#key(keyId);
    return this.#ctx.keys.report(k, bareLast5(k.last5));
  }

  async installations(keyId: string, query: PageQuery): Promise<Page<InstallationSummary>> {
    await this.#key(keyId);
    const limit = pageLimit(query.limit);
    const rows = await this.#store.installations(keyId, decodeAfter(query.cursor), limit + 1);
    return pageOf(
      rows,
      limit,
      (i) => ({
        installationId: i.installationId,
        channel: i.channel,
        activationCount: i.activationCount,
        firstActivatedAt: iso(i.firstActivatedAt),
        lastActivatedAt: iso(i.lastActivatedAt),
      }),
      (i) => [i.firstActivatedAt, i.hardwareRef],
    );
  }

  async hosts(keyId: string, query: PageQuery): Promise<Page<HostSummary>> {
    await this.#key(keyId);
    const limit = pageLimit(query.limit);
    const rows = await this.#store.hosts(keyId, decodeAfter(query.cursor), limit + 1);
    return pageOf(
      rows,
      limit,
      (h) => ({
        hardwareId: h.hardwareId,
        activationCount: h.activationCount,
        firstActivatedAt: iso(h.firstActivatedAt),
        lastActivatedAt: iso(h.lastActivatedAt),
        certificateSerial: h.certificateSerial,
        certificateExpiresAt: iso(h.certificateExpiresAt),
      }),
      (h) => [h.firstActivatedAt, h.hardwareId],
    );
  }

  async setNote(keyId: string, note: string | null, by: Principal): Promise<KeySummary> {
    const k = await this.#key(keyId);
    const text = checkNote(note);
    const ok = await this.#store.setNote(keyId, text, {
      at: this.#now(),
      action: 'key.note',
      result: 'OK',
      keyLast5: k.last5,
      keyId,
      orgId: k.orgId,
      actor: by.name,
      detail: text === null ? 'note cleared' : `note set (${text.length} characters)`,
    });
    if (!ok) throw new AuthorityError('KEY_NOT_FOUND', `no key has the id "${keyId.slice(0, 60)}"`);
    return this.#summaryOf(keyId);
  }

  async setLimit(keyId: string, limit: number, by: Principal): Promise<KeySummary> {
    const k = await this.#key(keyId);
    await this.#ctx.keys.changeLimit(k, limit, by.name);
    return this.#summaryOf(keyId);
  }

  async revoke(keyId: string, reason: string | null, by: Principal): Promise<KeySummary> {
    const k = await this.#key(keyId);
    if (reason !== null && (typeof reason !== 'string' || reason.length > MAX_REASON)) {
      throw invalidField('reason', `the reason is at most ${MAX_REASON} characters`);
    }
    await this.#ctx.keys.revokeRef(k, reason === null || reason.trim() === '' ? null : reason.trim(), by.name);
    return this.#summaryOf(keyId);
  }

  async revealKey(keyId: string, by: Principal): Promise<{ key: string }> {
    const k = await this.#key(keyId);
    const sealed = await this.#store.sealedKey(keyId);
    const opened = sealed ? unseal(this.#ctx.keyHashSecret, sealed) : null;
    const audit = { at: this.#now(), action: 'key.reveal', keyLast5: k.last5, keyId, orgId: k.orgId, actor: by.name };
    if (opened === null) {
      await this.#ctx.store.audit({ ...audit, result: 'KEY_NOT_RECOVERABLE' });
      throw new AuthorityError(
        'KEY_NOT_RECOVERABLE',
        `key ${bareLast5(k.last5)} was minted before keys were kept sealed: it cannot be shown again (mint a new key for the customer and revoke this one if it is lost)`,
      );
    }
    // Audited before it is handed out: a reveal is never unrecorded. The row holds the last five only.
    await this.#ctx.store.audit({ ...audit, result: 'OK' });
    return { key: opened.toString('utf8') };
  }

  // --- usage and audit ---

  async usage(orgId: string): Promise<MakUsage[]> {
    await this.#org(orgId);
    const names = await this.#groupNames();
    return (await this.#store.usage(orgId)).map((k) => {
      const limit = keyLimit(k);
      return {
        keyId: k.id,
        last5: bareLast5(k.last5),
        type: k.type,
        groups: k.groupIds.map((g) => names.get(g) ?? g),
        limit,
        used: k.used,
        remaining: Math.max(0, limit - k.used),
        percent: limit > 0 ? Math.floor((k.used * 100) / limit) : 0,
        revokedAt: isoOrNull(k.revokedAt),
      };
    });
  }

  async usageHistory(orgId: string, query: { keyId?: string; days?: number }): Promise<UsagePoint[]> {
    await this.#org(orgId);
    const days = query.days ?? DEFAULT_HISTORY_DAYS;
    if (!Number.isInteger(days) || days < 1 || days > MAX_HISTORY_DAYS) {
      throw invalidField(
        'days',
        `days is a whole number from 1 to ${MAX_HISTORY_DAYS}, got ${String(days).slice(0, 20)}`,
      );
    }
    if (query.keyId !== undefined) {
      const k = await this.#store.keyById(query.keyId);
      if (!k || k.orgId !== orgId) {
        throw new AuthorityError(
          'KEY_NOT_FOUND',
          `no key of organisation ${orgId} has the id "${query.keyId.slice(0, 60)}"`,
        );
      }
    }
    const today = Math.floor(this.#now() / DAY);
    const first = today - days + 1;
    const counted = new Map(
      (await this.#store.usageHistory(orgId, query.keyId, first * DAY)).map((p) => [p.day, p.n] as const),
    );
    const points: UsagePoint[] = [];
    for (let d = first; d <= today; d++) {
      points.push({ day: iso(d * DAY).slice(0, 10), activations: counted.get(d) ?? 0 });
    }
    return points;
  }

  async audit(query: AuditQuery): Promise<Page<AuditRow>> {
    const limit = pageLimit(query.limit);
    for (const [field, v] of [
      ['from', query.from],
      ['to', query.to],
    ] as const) {
      if (v !== undefined && !Number.isSafeInteger(v)) throw invalidField(field, `${field} is a time (ms since 1970)`);
    }
    // A key's rows are read through its organisation's index (its activation rows have no index by key).
    let orgId = query.orgId;
    if (query.keyId !== undefined && orgId === undefined) {
      const key = await this.#store.keyById(query.keyId);
      if (!key) return { items: [], nextCursor: null };
      orgId = key.orgId;
    }
    const rows = await this.#store.audit({
      orgId,
      keyId: query.keyId,
      actor: query.actor,
      action: query.action,
      from: query.from,
      to: query.to,
      beforeId: decodeId(query.cursor),
      limit: limit + 1,
    });
    return pageOf(
      rows,
      limit,
      (r) => ({
        id: String(r.id),
        at: iso(r.at),
        action: r.action,
        result: r.result,
        actor: r.actor,
        orgId: r.orgId,
        keyId: r.keyId,
        keyLast5: r.keyLast5 === null ? null : bareLast5(r.keyLast5),
        detail: r.detail,
      }),
      (r) => [r.id],
    );
  }

  // --- artefacts ---

  async #record(
    orgId: string,
    kind: ArtefactKind,
    fields: { name: string; groups: string[]; subjectKeyId: string | null; expiresAt: number | null },
    document: unknown,
  ): Promise<Artefact> {
    const record: ArtefactRecord = {
      id: `art_${randomBytes(10).toString('hex')}`,
      orgId,
      kind,
      ...fields,
      createdAt: this.#now(),
      // The document as the CLI prints it (buffers as base64 by their toJSON).
      document: JSON.parse(JSON.stringify(document)) as unknown,
    };
    await this.#store.addArtefact(record);
    return toArtefact(record);
  }

  async createActivationObject(orgId: string, request: ActivationObjectRequest, by: Principal): Promise<Artefact> {
    await this.#org(orgId);
    await this.#ctx.ringReady();
    const object = await createActivationObject(this.#ctx, request, { orgId, actor: by.name });
    const expires = (object as { expiresAt?: string }).expiresAt;
    return this.#record(
      orgId,
      'activation-object',
      {
        name: object.name,
        groups: [object.group.name],
        subjectKeyId: null,
        expiresAt: expires === undefined ? null : Date.parse(expires),
      },
      object,
    );
  }

  async issueOemCertificate(orgId: string, request: OemCertificateRequest, by: Principal): Promise<Artefact> {
    await this.#org(orgId);
    await this.#ctx.ringReady();
    const cert = await issueOemCertificate(this.#ctx, request, { orgId, actor: by.name });
    return this.#record(
      orgId,
      'oem-certificate',
      {
        name: cert.manufacturer,
        groups: cert.groups.map((g) => g.name),
        subjectKeyId: keyFingerprint(request.publicKeyRaw).toString('hex'),
        expiresAt: Date.parse(cert.notAfter),
      },
      cert,
    );
  }

  async issueTokenCa(orgId: string, request: TokenCaRequest, by: Principal): Promise<Artefact> {
    await this.#org(orgId);
    await this.#ctx.ringReady();
    const cert = await issueTokenCa(this.#ctx, request, { orgId, actor: by.name });
    return this.#record(
      orgId,
      'token-ca',
      {
        name: cert.organisation,
        groups: [cert.group.name],
        subjectKeyId: keyFingerprint(request.publicKeyRaw).toString('hex'),
        expiresAt: Date.parse(cert.notAfter),
      },
      cert,
    );
  }

  async artefacts(orgId: string, query: PageQuery & { kind?: ArtefactKind }): Promise<Page<Artefact>> {
    await this.#org(orgId);
    const limit = pageLimit(query.limit);
    if (query.kind !== undefined && !['activation-object', 'oem-certificate', 'token-ca'].includes(query.kind)) {
      throw invalidField('kind', 'the kind is activation-object, oem-certificate or token-ca');
    }
    const rows = await this.#store.artefacts(orgId, query.kind, decodeAfter(query.cursor), limit + 1);
    return pageOf(rows, limit, toArtefact, (a) => [a.createdAt, a.id]);
  }

  // --- phone operator ---

  async confirmByOperator(installationId: string, by: Principal): Promise<Confirmation> {
    await this.#ctx.ringReady();
    const at = this.#now();
    try {
      const confirmation = await confirmByPhone(this.#ctx, installationId);
      await this.#ctx.store.audit({
        at,
        action: 'operator.confirm',
        result: 'OK',
        actor: by.name,
        detail: `confirmation (${confirmation.kind}) read out by the operator`,
      });
      return confirmation;
    } catch (err) {
      const code = err instanceof AuthorityError ? err.code : 'INTERNAL';
      await this.#ctx.store
        .audit({ at, action: 'operator.confirm', result: code, actor: by.name })
        .catch(() => undefined);
      throw err;
    }
  }
}

function checkNote(note: unknown): string | null {
  if (note === undefined || note === null) return null;
  if (typeof note !== 'string') throw invalidField('note', 'the note is text');
  const text = note.trim();
  if (text.length > MAX_NOTE)
    throw invalidField('note', `a note is at most ${MAX_NOTE} characters, got ${text.length}`);
  return text === '' ? null : text;
}

const toArtefact = (a: ArtefactRecord): Artefact => ({
  id: a.id,
  orgId: a.orgId,
  kind: a.kind,
  name: a.name,
  groups: a.groups,
  subjectKeyId: a.subjectKeyId,
  createdAt: iso(a.createdAt),
  expiresAt: isoOrNull(a.expiresAt),
  document: a.document,
});
