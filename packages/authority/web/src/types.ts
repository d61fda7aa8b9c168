/** The REST API's shapes the UI reads (packages/authority/src/*\/types.ts, as JSON). */

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export interface User {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly role: string;
  readonly orgId: string | null;
  readonly createdAt: string;
  readonly disabledAt: string | null;
  readonly lastSignInAt: string | null;
}

export interface PrincipalInfo {
  readonly kind: 'user' | 'token' | 'admin-token';
  readonly name: string;
  readonly orgId: string | null;
  readonly role: string | null;
  readonly scopes: readonly string[];
}

export interface SessionInfo {
  readonly user: User | null;
  readonly principal: PrincipalInfo;
}

export interface Contact {
  readonly name: string;
  readonly email?: string;
  readonly phone?: string;
}

export interface Organisation {
  readonly id: string;
  readonly name: string;
  readonly externalRef: string | null;
  readonly contacts: readonly Contact[];
  readonly createdAt: string;
  readonly keyCount: number;
}

/** 'mak', 'kms-host', 'retail', … */
export type KeyType = string;

export interface KeySummary {
  readonly keyId: string;
  readonly orgId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly last5: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly activationsPerHost: number | null;
  readonly createdAt: string;
  readonly revokedAt: string | null;
  readonly note: string | null;
  readonly recoverable: boolean;
}

export interface MintedKey {
  readonly key: string;
  readonly keyId: string;
  readonly type: KeyType;
  readonly groups: readonly string[];
  readonly limit: number;
  readonly orgId: string;
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
  readonly percent: number;
  readonly revokedAt: string | null;
}

export interface UsagePoint {
  readonly day: string;
  readonly activations: number;
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

export interface RaiseRequest {
  readonly id: string;
  readonly orgId: string;
  readonly keyId: string;
  readonly keyLast5: string;
  readonly additional: number;
  readonly reason: string;
  readonly state: 'pending' | 'approved' | 'declined';
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly decisionReason: string | null;
  readonly limitBefore: number | null;
  readonly limitAfter: number | null;
}

export interface ApiTokenInfo {
  readonly id: string;
  readonly name: string;
  readonly last5: string;
  readonly scopes: readonly string[];
  readonly createdBy: string | null;
  readonly orgId: string | null;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

export interface WebhookEndpoint {
  readonly id: string;
  readonly orgId: string | null;
  readonly url: string;
  readonly events: readonly string[];
  readonly secretLast5: string;
  readonly createdAt: string;
  readonly disabledAt: string | null;
}

export interface WebhookDelivery {
  readonly id: string;
  readonly endpointId: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly state: 'pending' | 'delivered' | 'failed';
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly nextAttemptAt: string | null;
  readonly deliveredAt: string | null;
  readonly createdAt: string;
}

export interface Group {
  readonly id?: string;
  readonly name: string;
  readonly kind?: string;
}

export const WEBHOOK_EVENT_TYPES = [
  'key.usage',
  'key.limit_raised',
  'key.revoked',
  'host.activated',
  'activation.refused',
  'raise_request.created',
  'raise_request.decided',
] as const;

/** Whether the signed-in principal works at the publisher's level (else: one organisation's portal). */
export const isPublisher = (p: PrincipalInfo): boolean => p.scopes.some((s) => s.startsWith('publisher:'));

/** The organisation of an organisation principal: its own orgId, or the org named in its scopes. */
export function orgOf(p: PrincipalInfo): string | null {
  if (p.orgId) return p.orgId;
  for (const s of p.scopes) {
    const m = /^org:([^:]+):/.exec(s);
    if (m) return m[1] ?? null;
  }
  return null;
}

/** Whether the principal holds `needed` (same rules as the server's scopeGrants). */
export function holds(p: PrincipalInfo, needed: string): boolean {
  return p.scopes.some((held) => {
    if (held === needed || held === 'publisher:*') return true;
    if (held === 'publisher:read') return /^org:[^:]+:read$/.test(needed);
    const o = /^org:([^:]+):\*$/.exec(held);
    return o ? needed.startsWith(`org:${o[1]}:`) : false;
  });
}

/** A secret's last five characters as shown: `…ABCDE` (whether the server's text has the ellipsis or not). */
export const tail = (last5: string | null | undefined): string => (last5 ? `…${last5.replace(/^…/, '')}` : '');
