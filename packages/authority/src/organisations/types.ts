import type { KeyType } from '@volact/core';
import type { Principal } from '../access/principal.js';
import type { ActivationObjectRequest, OemCertificateRequest, TokenCaRequest } from '../certification.js';
import type { KeyReport, MintKeyRequest, MintedKey } from '../keys.js';
import type { Confirmation } from '../phone-confirmation.js';

/**
 * The publisher's customers and what belongs to them (docs/portal.md "Organisations"). The
 * contract the REST API, the web UI and the CLI build on; organisations/organisations.ts
 * implements it. Times are ISO 8601 strings; lists are pages with an opaque cursor.
 */

/** Keys minted before organisations existed belong to it (migration 6). */
export const DEFAULT_ORG_ID = 'org_default';

export interface Contact {
  readonly name: string;
  readonly email?: string;
  readonly phone?: string;
}

export interface Organisation {
  /** `org_` + lower-case letters and digits. */
  readonly id: string;
  readonly name: string;
  /** The agreement number or the customer's reference in the publisher's books. */
  readonly externalRef: string | null;
  readonly contacts: readonly Contact[];
  readonly createdAt: string;
  readonly keyCount: number;
}

export interface OrganisationInput {
  readonly name: string;
  readonly externalRef?: string | null;
  readonly contacts?: readonly Contact[];
}

export interface Page<T> {
  readonly items: T[];
  /** Pass back as `cursor` for the next page; null on the last one. */
  readonly nextCursor: string | null;
}

export interface PageQuery {
  readonly cursor?: string;
  /** 1–500, default 100. */
  readonly limit?: number;
}

export interface KeySummary {
  readonly keyId: string;
  readonly orgId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  /** The key's last five characters (never the key). */
  readonly last5: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly activationsPerHost: number | null;
  readonly createdAt: string;
  readonly revokedAt: string | null;
  readonly note: string | null;
  /** Whether the full key can be revealed (kept sealed since it was minted). */
  readonly recoverable: boolean;
}

export interface KeyListQuery extends PageQuery {
  /** Omitted: every organisation (publisher scopes only). */
  readonly orgId?: string;
  readonly type?: KeyType;
  /** Group name or id. */
  readonly group?: string;
  readonly revoked?: boolean;
  /** Matches the last five characters exactly or the note as a substring (case-insensitive). */
  readonly q?: string;
}

export interface InstallationSummary {
  readonly installationId: string;
  readonly channel: string;
  readonly activationCount: number;
  readonly firstActivatedAt: string;
  readonly lastActivatedAt: string;
}

export interface HostSummary {
  readonly hardwareId: string;
  readonly activationCount: number;
  readonly firstActivatedAt: string;
  readonly lastActivatedAt: string;
  readonly certificateSerial: string;
  readonly certificateExpiresAt: string;
}

export interface MakUsage {
  readonly keyId: string;
  readonly last5: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** used / limit × 100, rounded down. */
  readonly percent: number;
  readonly revokedAt: string | null;
}

/** New activations per UTC day (installations first activated that day, hosts for KMS host keys). */
export interface UsagePoint {
  readonly day: string;
  readonly activations: number;
}

export interface AuditQuery extends PageQuery {
  readonly orgId?: string;
  readonly keyId?: string;
  /** The actor's name as recorded (email, `token:name…last5`, `admin-token`, `cli`). */
  readonly actor?: string;
  /** Prefix of the action, e.g. `key.` */
  readonly action?: string;
  /** ms since the epoch, inclusive / exclusive. */
  readonly from?: number;
  readonly to?: number;
}

export interface AuditRow {
  readonly id: string;
  readonly at: string;
  readonly action: string;
  readonly result: string;
  readonly actor: string | null;
  readonly orgId: string | null;
  readonly keyId: string | null;
  readonly keyLast5: string | null;
  readonly detail: string | null;
}

export type ArtefactKind = 'activation-object' | 'oem-certificate' | 'token-ca';

export interface Artefact {
  readonly id: string;
  readonly orgId: string;
  readonly kind: ArtefactKind;
  /** The object's name, the manufacturer or the organisation named in the certificate. */
  readonly name: string;
  readonly groups: readonly string[];
  /** The signed subject's key ID (hex) when it has one (OEM manufacturer, token CA). */
  readonly subjectKeyId: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  /** The document as issued (the JSON the CLI prints), to download again. */
  readonly document: unknown;
}

/** The organisations module's face (Authority#organisations). `by` is audited as the actor. */
export interface OrganisationsApi {
  create(input: OrganisationInput, by: Principal): Promise<Organisation>;
  list(query: PageQuery & { q?: string }): Promise<Page<Organisation>>;
  /** ORG_NOT_FOUND */
  get(orgId: string): Promise<Organisation>;
  update(orgId: string, patch: Partial<OrganisationInput>, by: Principal): Promise<Organisation>;

  /** Mints a key owned by the organisation; the key is in the answer once (kept sealed for reveal). */
  mintKey(
    orgId: string,
    request: MintKeyRequest & { note?: string },
    by: Principal,
  ): Promise<MintedKey & { orgId: string }>;
  listKeys(query: KeyListQuery): Promise<Page<KeySummary>>;
  /**
   * By key ID, or by last five characters within the organisation (KEY_AMBIGUOUS when several).
   * `orgId` given: a key of another organisation is KEY_NOT_FOUND.
   */
  findKey(orgId: string | null, ref: string): Promise<KeySummary>;
  /** By the full key text (which never travels in a URL). */
  findKeyByText(key: string): Promise<KeySummary>;
  /** The key's report as `key show` prints it (every activation). */
  keyReport(keyId: string): Promise<KeyReport>;
  installations(keyId: string, query: PageQuery): Promise<Page<InstallationSummary>>;
  hosts(keyId: string, query: PageQuery): Promise<Page<HostSummary>>;
  setNote(keyId: string, note: string | null, by: Principal): Promise<KeySummary>;
  /** Sets the limit (KEY_LIMIT_BELOW_USED); writes `key.limit_raised` in the same transaction. */
  setLimit(keyId: string, limit: number, by: Principal): Promise<KeySummary>;
  /** Writes `key.revoked` in the same transaction. */
  revoke(keyId: string, reason: string | null, by: Principal): Promise<KeySummary>;
  /** The full key (KEY_NOT_RECOVERABLE for keys minted before sealing); audited `key.reveal`. */
  revealKey(keyId: string, by: Principal): Promise<{ key: string }>;

  usage(orgId: string): Promise<MakUsage[]>;
  usageHistory(orgId: string, query: { keyId?: string; days?: number }): Promise<UsagePoint[]>;
  audit(query: AuditQuery): Promise<Page<AuditRow>>;

  createActivationObject(orgId: string, request: ActivationObjectRequest, by: Principal): Promise<Artefact>;
  issueOemCertificate(orgId: string, request: OemCertificateRequest, by: Principal): Promise<Artefact>;
  issueTokenCa(orgId: string, request: TokenCaRequest, by: Principal): Promise<Artefact>;
  artefacts(orgId: string, query: PageQuery & { kind?: ArtefactKind }): Promise<Page<Artefact>>;

  /** The phone operator's call: IID in, CID out, audited with the operator's name. */
  confirmByOperator(installationId: string, by: Principal): Promise<Confirmation>;
}
