import {
  AuthorityError,
  type Authority,
  type AuthorityErrorCode,
  type KeyReport,
  type KeyRingStatus,
  type MintKeyRequest,
  type MintedKey,
  type OnlineKeyRotation,
  type RevocationListReport,
  type RevocationResult,
  type RevokeHostOptions,
  type RevokeOptions,
  type RotationResult,
  type RotationStep,
} from '@volact/authority';
import type { ActivationObject, OemCertificate, ProductConfig, ProductGroup, TokenCaCertificate } from '@volact/core';
import { CliError } from '../output.js';

/**
 * `volact authority … --url URL --token-file F`: the authority's face (what the CLI calls on
 * a local Authority) over its REST API (docs/authority.md "REST API"). The token's principal
 * is the actor the authority audits; the `by` arguments of the module faces are ignored here.
 * A refusal `{error:{code,message}}` becomes an AuthorityError with the same code, so the CLI
 * prints and exits as it does on the data directory.
 */

type OrganisationsApi = Authority['organisations'];
type AccessApi = Authority['access'];
type RaiseRequestsApi = Authority['raiseRequests'];
type WebhooksApi = Authority['webhooks'];
type Result<F> = F extends (...args: never[]) => Promise<infer R> ? R : never;
type Arg<F, N extends number> = F extends (...args: infer A) => unknown ? A[N] : never;

type KeySummary = Result<OrganisationsApi['findKey']>;
type Page<T> = { items: T[]; nextCursor: string | null };
type Query = Record<string, string | number | boolean | null | undefined>;

/** The default organisation: what a verb without an organisation acts for (keys minted before organisations). */
const DEFAULT_ORG = 'org_default';

const LOOPBACK = (host: string) =>
  host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);

/** The authority's base URL, checked: https, or http to this machine only (a token must not cross a network in clear). */
export function remoteAuthorityUrl(text: string, flag = '--url'): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(
      'AUTHORITY_URL_INVALID',
      `${flag} "${text.slice(0, 200)}" is not a URL (https://authority.example.com)`,
    );
  }
  if (url.username || url.password) {
    throw new CliError(
      'AUTHORITY_URL_INVALID',
      `${flag}: no user or password in the URL; the token goes in --token-file`,
    );
  }
  if (url.protocol === 'http:' && !LOOPBACK(url.hostname)) {
    throw new CliError(
      'AUTHORITY_URL_INVALID',
      `${flag} must be https:// (plain http:// only to this machine: 127.0.0.1, ::1, localhost), got ${url.origin}`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliError('AUTHORITY_URL_INVALID', `${flag} must be https://…, got ${url.protocol}`);
  }
  if (url.search || url.hash) throw new CliError('AUTHORITY_URL_INVALID', `${flag}: no query or fragment in the URL`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

const seg = (text: string) => encodeURIComponent(text);

function unsupported(what: string): never {
  throw new CliError(
    'OPTION_INVALID',
    `${what} is not offered over the API with a token: run it with --data-dir on the authority's machine (or in the web UI)`,
  );
}

/** `{items}`, a bare array, or `{<name>: [...]}`: what a list route answers. */
function itemsOf<T>(body: unknown, name?: string): T[] {
  if (Array.isArray(body)) return body as T[];
  const o = body as Record<string, unknown>;
  if (Array.isArray(o?.items)) return o.items as T[];
  if (name !== undefined && Array.isArray(o?.[name])) return o[name] as T[];
  throw new CliError('AUTHORITY_BAD_RESPONSE', 'the authority answered a list without items');
}

function pageOf<T>(body: unknown): Page<T> {
  const next = (body as { nextCursor?: unknown })?.nextCursor;
  return { items: itemsOf<T>(body), nextCursor: typeof next === 'string' ? next : null };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export class RemoteAuthority {
  readonly #base: URL;
  readonly #token: string;
  readonly #timeoutMs: number;
  /** The organisation of each key seen: the key routes are under /v1/orgs/{orgId}. */
  readonly #orgOfKey = new Map<string, string>();
  readonly organisations: OrganisationsApi;
  readonly access: AccessApi;
  readonly raiseRequests: RaiseRequestsApi;
  readonly webhooks: WebhooksApi;

  constructor(url: string, token: string, options: { timeoutMs?: number } = {}) {
    this.#base = remoteAuthorityUrl(url);
    this.#token = token;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.organisations = this.#organisations();
    this.access = this.#access();
    this.raiseRequests = this.#raiseRequests();
    this.webhooks = this.#webhooks();
  }

  /** The authority's origin (what messages name; never the token). */
  get origin(): string {
    return this.#base.origin;
  }

  /** One call: JSON in, JSON out; a refusal thrown as the authority's own error. */
  async request<T>(method: string, path: string, body?: unknown, query: Query = {}): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), this.#base);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'error',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${this.#timeoutMs / 1000} s`
          : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new CliError(
        'AUTHORITY_UNREACHABLE',
        `the authority ${this.#base.origin} did not answer (${why}): check --url and that the authority is running`,
      );
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const e = (parsed as { error?: Record<string, unknown> } | undefined)?.error;
      if (e && typeof e.code === 'string' && typeof e.message === 'string') {
        const message =
          e.code === 'NOT_FOUND' && /^no route /.test(e.message)
            ? `${e.message}: this authority does not offer that call (an older version?)`
            : e.message;
        const err = new AuthorityError(e.code as AuthorityErrorCode, message);
        // What the authority says beside the message (the scope it lacks, the next rotation step, the field).
        for (const [k, v] of Object.entries(e)) {
          if (k !== 'code' && k !== 'message' && (typeof v === 'string' || typeof v === 'number')) {
            (err as unknown as Record<string, unknown>)[k] = v;
          }
        }
        // A request field refused by the API's schema (`body.limit: …`): the field, for the CLI to name its flag.
        const field = typeof e.field === 'string' ? e.field : /^(?:body|query)\.([A-Za-z]+)\b/.exec(e.message)?.[1];
        if (field !== undefined) err.field = field;
        const retry = Number(res.headers.get('retry-after'));
        if (Number.isFinite(retry) && retry > 0) err.retryAfterSeconds = retry;
        throw err;
      }
      throw new CliError(
        'AUTHORITY_BAD_RESPONSE',
        `${this.#base.origin} answered HTTP ${res.status} without a volact error body: is --url a volact authority?`,
      );
    }
    if (res.status !== 204 && parsed === undefined && text !== '') {
      throw new CliError(
        'AUTHORITY_BAD_RESPONSE',
        `${this.#base.origin} did not answer JSON: is --url a volact authority?`,
      );
    }
    return parsed as T;
  }

  /** Every page of a list route. */
  async #all<T>(path: string, query: Query = {}, name?: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10_000; i++) {
      const body = await this.request<unknown>('GET', path, undefined, { ...query, limit: 500, cursor });
      out.push(...itemsOf<T>(body, name));
      const next = (body as { nextCursor?: unknown })?.nextCursor;
      if (typeof next !== 'string' || next === '') break;
      cursor = next;
    }
    return out;
  }

  // --- the authority's own verbs -------------------------------------------------------------

  addGroup(input: { name: string; kind?: ProductGroup['kind']; threshold?: number }): Promise<ProductGroup> {
    return this.request('POST', '/v1/groups', input);
  }

  listGroups(): Promise<ProductGroup[]> {
    return this.#all<ProductGroup>('/v1/groups', {}, 'groups');
  }

  productConfig(groupName: string, options: { url?: string } = {}): Promise<ProductConfig> {
    return this.request('GET', `/v1/groups/${seg(groupName)}/product-config`, undefined, { url: options.url });
  }

  async mintKey(request: MintKeyRequest): Promise<MintedKey> {
    // As on the data directory: the minted key, without the organisation (`key mint` prints it so).
    const m = await this.organisations.mintKey(DEFAULT_ORG, request, undefined as never);
    const { key, keyId, type, groups, limit, hosts, activationsPerHost } = m;
    return { key, keyId, type, groups, limit, hosts, activationsPerHost };
  }

  /**
   * The publisher's route takes the key in the body (publisher:read); an organisation's token
   * reads its own key's report through the lookup (the key in the body too) and its key ID.
   */
  async showKey(text: string): Promise<KeyReport> {
    try {
      return await this.request('POST', '/v1/admin/keys/show', { key: text });
    } catch (err) {
      if (!(err instanceof AuthorityError && err.code === 'SCOPE_MISSING')) throw err;
      const found = await this.organisations.findKeyByText(text);
      const report = await this.organisations.keyReport(found.keyId);
      // `key show` prints the last five after an ellipsis (the organisation's report may give them bare).
      return report.key.startsWith('…') ? report : { ...report, key: `…${report.key}` };
    }
  }

  setKeyLimit(text: string, limit: number): Promise<KeyReport> {
    return this.request('POST', '/v1/admin/keys/limit', { key: text, limit });
  }

  revokeKey(text: string): Promise<KeyReport> {
    return this.request('POST', '/v1/admin/keys/revoke', { key: text });
  }

  confirm(installationIdText: string): Promise<Result<Authority['confirm']>> {
    return this.request('POST', '/v1/operator/confirmations', { installationId: installationIdText });
  }

  async createActivationObject(request: Arg<Authority['createActivationObject'], 0>): Promise<ActivationObject> {
    return documentOf(await this.organisations.createActivationObject(DEFAULT_ORG, request, undefined as never));
  }

  async issueOemCertificate(request: Arg<Authority['issueOemCertificate'], 0>): Promise<OemCertificate> {
    return documentOf(await this.organisations.issueOemCertificate(DEFAULT_ORG, request, undefined as never));
  }

  async issueTokenCa(request: Arg<Authority['issueTokenCa'], 0>): Promise<TokenCaCertificate> {
    return documentOf(await this.organisations.issueTokenCa(DEFAULT_ORG, request, undefined as never));
  }

  revokeHost(subject: string, options: RevokeHostOptions = {}): Promise<RevocationResult> {
    return this.request('POST', '/v1/revocations/hosts', {
      subject,
      ...(options.reason === undefined ? {} : { reason: options.reason }),
      ...(options.alsoRevokeKey ? { alsoRevokeKey: true } : {}),
    });
  }

  revokeManufacturer(keyId: string, options: RevokeOptions = {}): Promise<RevocationResult> {
    return this.request('POST', '/v1/revocations/manufacturers', {
      keyId,
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    });
  }

  revokeTokenCa(keyId: string, options: RevokeOptions = {}): Promise<RevocationResult> {
    return this.request('POST', '/v1/revocations/token-cas', {
      keyId,
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    });
  }

  async revocationList(): Promise<RevocationListReport> {
    const { list, encoded, ...rest } = await this.request<Record<string, unknown>>('GET', '/v1/revocations/entries');
    const text = typeof list === 'string' ? list : typeof encoded === 'string' ? encoded : undefined;
    if (text === undefined) throw new CliError('AUTHORITY_BAD_RESPONSE', 'the revocation report has no signed list');
    return { ...(rest as object), encoded: Buffer.from(text, 'base64') } as RevocationListReport;
  }

  rootStatus(): Promise<KeyRingStatus> {
    return this.request('GET', '/v1/root');
  }

  rotateRoot(step: RotationStep): Promise<RotationResult> {
    return this.request('POST', '/v1/root/rotate', { step });
  }

  rotateOnlineKey(): Promise<OnlineKeyRotation> {
    return this.request('POST', '/v1/online-key/rotate', {});
  }

  /** Nothing held open: each call is its own request. */
  async close(): Promise<void> {}

  // --- the publisher's service (organisations, access, requests, webhooks) -------------------

  #remember(summary: KeySummary): KeySummary {
    if (summary && typeof summary.keyId === 'string' && typeof summary.orgId === 'string') {
      this.#orgOfKey.set(summary.keyId, summary.orgId);
    }
    return summary;
  }

  /** The organisation of a key ID: remembered, else looked up in each organisation the token sees. */
  async #keyPath(keyId: string): Promise<string> {
    let orgId = this.#orgOfKey.get(keyId);
    if (orgId === undefined) {
      for (const org of await this.#all<{ id: string }>('/v1/orgs')) {
        try {
          this.#remember(await this.request<KeySummary>('GET', `/v1/orgs/${seg(org.id)}/keys/${seg(keyId)}`));
          orgId = org.id;
          break;
        } catch (err) {
          if (!(err instanceof AuthorityError) || err.httpStatus !== 404) throw err;
        }
      }
    }
    if (orgId === undefined) throw new AuthorityError('KEY_NOT_FOUND', `no key has the ID ${keyId.slice(0, 40)}`);
    return `/v1/orgs/${seg(orgId)}/keys/${seg(keyId)}`;
  }

  #organisations(): OrganisationsApi {
    const artefactPath = {
      'activation-object': 'activation-objects',
      'oem-certificate': 'oem-certificates',
      'token-ca': 'token-cas',
    } as const;
    const orgs = (orgId: string) => `/v1/orgs/${seg(orgId)}`;
    return {
      create: (input) => this.request('POST', '/v1/orgs', input),
      list: async (query) => pageOf(await this.request('GET', '/v1/orgs', undefined, { ...query })),
      get: (orgId) => this.request('GET', orgs(orgId)),
      update: (orgId, patch) => this.request('PATCH', orgs(orgId), patch),
      mintKey: async (orgId, request) => {
        const minted = await this.request<MintedKey & { orgId: string }>('POST', `${orgs(orgId)}/keys`, request);
        this.#orgOfKey.set(minted.keyId, minted.orgId ?? orgId);
        return minted;
      },
      listKeys: async (query) => {
        const { orgId, ...rest } = query;
        const page = pageOf<KeySummary>(
          await this.request('GET', orgId === undefined ? '/v1/keys' : `${orgs(orgId)}/keys`, undefined, { ...rest }),
        );
        page.items.forEach((k) => this.#remember(k));
        return page;
      },
      findKey: async (orgId, ref) => {
        if (orgId !== null) return this.#remember(await this.request('GET', `${orgs(orgId)}/keys/${seg(ref)}`));
        if (/^[0-9A-Za-z]{5}$/.test(ref)) {
          const found = (await this.#all<KeySummary>('/v1/keys', { q: ref })).filter(
            (k) => k.last5 === ref.toUpperCase() || k.last5 === ref,
          );
          if (found.length > 1) {
            throw new AuthorityError(
              'KEY_AMBIGUOUS',
              `${found.length} keys end in ${ref}: give the key ID or the organisation`,
            );
          }
          if (found.length === 1) return this.#remember(found[0] as KeySummary);
        }
        const path = await this.#keyPath(ref);
        return this.#remember(await this.request('GET', path));
      },
      findKeyByText: async (key) => this.#remember(await this.request('POST', '/v1/keys/lookup', { key })),
      keyReport: async (keyId) => this.request('GET', `${await this.#keyPath(keyId)}/report`),
      installations: async (keyId, query) =>
        pageOf(await this.request('GET', `${await this.#keyPath(keyId)}/installations`, undefined, { ...query })),
      hosts: async (keyId, query) =>
        pageOf(await this.request('GET', `${await this.#keyPath(keyId)}/hosts`, undefined, { ...query })),
      setNote: async (keyId, note) => this.request('PUT', `${await this.#keyPath(keyId)}/note`, { note }),
      setLimit: async (keyId, limit) => this.request('POST', `${await this.#keyPath(keyId)}/limit`, { limit }),
      revoke: async (keyId, reason) =>
        this.request('POST', `${await this.#keyPath(keyId)}/revoke`, reason === null ? {} : { reason }),
      revealKey: async () => unsupported('revealing a full key (the web UI asks for the password again)'),
      usage: async (orgId) => itemsOf(await this.request('GET', `${orgs(orgId)}/usage`)),
      usageHistory: async (orgId, query) =>
        itemsOf(await this.request('GET', `${orgs(orgId)}/usage/history`, undefined, { ...query })),
      audit: async (query) =>
        pageOf(
          await this.request('GET', '/v1/audit', undefined, { ...query, from: iso(query.from), to: iso(query.to) }),
        ),
      createActivationObject: (orgId, request) =>
        this.request('POST', `${orgs(orgId)}/activation-objects`, {
          group: request.group,
          domain: request.domain,
          name: request.name,
          ...(request.validityDays === undefined ? {} : { validityDays: request.validityDays }),
        }),
      issueOemCertificate: (orgId, request) =>
        this.request('POST', `${orgs(orgId)}/oem-certificates`, {
          manufacturer: request.manufacturer,
          publicKey: request.publicKeyRaw.toString('base64'),
          groups: [...request.groups],
          days: request.days,
        }),
      issueTokenCa: (orgId, request) =>
        this.request('POST', `${orgs(orgId)}/token-cas`, {
          organisation: request.organisation,
          group: request.group,
          publicKey: request.publicKeyRaw.toString('base64'),
          days: request.days,
        }),
      artefacts: async (orgId, query) => {
        const { kind, ...rest } = query;
        if (kind !== undefined) {
          return pageOf(await this.request('GET', `${orgs(orgId)}/${artefactPath[kind]}`, undefined, { ...rest }));
        }
        const items: Result<OrganisationsApi['createActivationObject']>[] = [];
        for (const path of Object.values(artefactPath))
          items.push(
            ...(await this.#all<Result<OrganisationsApi['createActivationObject']>>(`${orgs(orgId)}/${path}`)),
          );
        return { items, nextCursor: null };
      },
      confirmByOperator: (installationId) => this.request('POST', '/v1/operator/confirmations', { installationId }),
    };
  }

  #access(): AccessApi {
    const users = (filter: { orgId?: string | null }) =>
      this.#all<Result<AccessApi['getUser']>>('/v1/users', { orgId: filter.orgId ?? undefined }, 'users');
    return {
      addUser: (input) => this.request('POST', '/v1/users', input),
      // orgId null: the publisher's users only (the route lists all the caller may see).
      listUsers: async (filter) => (await users(filter)).filter((u) => filter.orgId !== null || u.orgId === null),
      getUser: async (idOrEmail) => {
        const want = idOrEmail.toLowerCase();
        const found = (await users({})).find((u) => u.id === idOrEmail || u.email.toLowerCase() === want);
        if (!found)
          throw new AuthorityError('USER_NOT_FOUND', `no user has the id or email ${idOrEmail.slice(0, 200)}`);
        return found;
      },
      updateUser: (id, patch) => this.request('PATCH', `/v1/users/${seg(id)}`, patch),
      removeUser: async (id) => {
        await this.request('DELETE', `/v1/users/${seg(id)}`);
      },
      signIn: async () => unsupported('signing in'),
      signOut: async () => unsupported('signing out'),
      authenticate: async () =>
        (await this.request<{ principal: Result<AccessApi['authenticate']> }>('GET', '/v1/session')).principal,
      confirmPassword: async () => unsupported('confirming a password'),
      createToken: (input) =>
        this.request('POST', '/v1/tokens', {
          name: input.name,
          scopes: [...input.scopes],
          ...(input.expiresAt === undefined ? {} : { expiresAt: iso(input.expiresAt) }),
        }),
      listTokens: async (filter) =>
        (await this.#all<Result<AccessApi['revokeToken']>>('/v1/tokens', { orgId: filter.orgId }, 'tokens')).filter(
          (t) => filter.createdBy === undefined || t.createdBy === filter.createdBy,
        ),
      revokeToken: (id) => this.request('DELETE', `/v1/tokens/${seg(id)}`),
    };
  }

  #raiseRequests(): RaiseRequestsApi {
    return {
      create: (orgId, input) => this.request('POST', `/v1/orgs/${seg(orgId)}/raise-requests`, input),
      list: async (query) => pageOf(await this.request('GET', '/v1/raise-requests', undefined, { ...query })),
      get: (id) => this.request('GET', `/v1/raise-requests/${seg(id)}`),
      decide: (id, input) => this.request('POST', `/v1/raise-requests/${seg(id)}/decision`, input),
    };
  }

  #webhooks(): WebhooksApi {
    const list = (filter: { orgId?: string | null }) =>
      this.#all<Result<WebhooksApi['get']>>('/v1/webhooks', { orgId: filter.orgId ?? undefined }, 'webhooks');
    return {
      create: (input) =>
        this.request('POST', '/v1/webhooks', {
          ...(input.orgId ? { orgId: input.orgId } : {}),
          url: input.url,
          events: [...input.events],
        }),
      list,
      get: async (id) => {
        const found = (await list({})).find((w) => w.id === id);
        if (!found) throw new AuthorityError('WEBHOOK_NOT_FOUND', `no webhook endpoint has the id ${id.slice(0, 60)}`);
        return found;
      },
      remove: async (id) => {
        await this.request('DELETE', `/v1/webhooks/${seg(id)}`);
      },
      deliveries: async (endpointId, query) =>
        pageOf(await this.request('GET', `/v1/webhooks/${seg(endpointId)}/deliveries`, undefined, { ...query })),
      redeliver: (deliveryId) => this.request('POST', `/v1/webhook-deliveries/${seg(deliveryId)}/redeliver`, {}),
      start: () => unsupported('the webhook dispatcher'),
      stop: async () => undefined,
      dispatchOnce: async () => unsupported('the webhook dispatcher'),
    };
  }
}

/** An artefact route answers the artefact; the CLI prints the document it holds (as on the data directory). */
function documentOf<T>(answer: unknown): T {
  const a = answer as { document?: unknown; kind?: unknown };
  return (a && typeof a === 'object' && 'document' in a && 'kind' in a ? a.document : answer) as T;
}
