import {
  DEFAULT_THRESHOLD,
  GROUP_KINDS,
  GROUP_NAME_RE,
  authorityEndpoint,
  defaultPolicy,
  guidToBytes,
  gvlkFor,
  randomGuid,
  type Clock,
  type GroupKind,
  type ProductConfig,
  type ProductGroup,
} from '@volact/core';
import { AuthorityError, invalidField } from './errors.js';
import type { AuthorityStore } from './store.js';

/** The product groups an authority's keys activate; a group never changes once added. */
export class ProductGroups {
  /** What never changes about a group, so the hot path reads the database once per group. */
  readonly #byId = new Map<string, ProductGroup>();

  constructor(
    private readonly store: AuthorityStore,
    private readonly clock: Clock,
  ) {}

  async add(input: { name: string; kind?: GroupKind; threshold?: number }): Promise<ProductGroup> {
    if (!GROUP_NAME_RE.test(input.name)) {
      throw new AuthorityError(
        'GROUP_INVALID',
        `group name "${input.name.slice(0, 80)}" is invalid: use 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      );
    }
    const kind = input.kind ?? 'app';
    if (!GROUP_KINDS.includes(kind)) {
      throw new AuthorityError('GROUP_INVALID', `group kind "${kind}" is invalid; expected ${GROUP_KINDS.join(', ')}`);
    }
    const threshold = input.threshold ?? DEFAULT_THRESHOLD[kind];
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1_000_000) {
      throw new AuthorityError(
        'GROUP_INVALID',
        `threshold ${threshold} is invalid; expected a whole number from 1 to 1000000`,
      );
    }
    if (await this.store.findGroup(input.name)) {
      throw new AuthorityError('GROUP_EXISTS', `a product group named "${input.name}" exists already`);
    }
    const group: ProductGroup = { id: randomGuid(), name: input.name, kind, threshold };
    await this.store.addGroup({ ...group, createdAt: this.clock.now() }); // GROUP_EXISTS on a race
    await this.store.audit({ at: this.clock.now(), action: 'group.add', result: 'OK', detail: group.name });
    return group;
  }

  list(): Promise<ProductGroup[]> {
    return this.store.listGroups();
  }

  /** A group by name or id; an unknown one is refused with the groups there are. */
  async find(nameOrId: string): Promise<ProductGroup> {
    const cached = this.#byId.get(nameOrId);
    if (cached) return cached;
    const group = await this.store.findGroup(nameOrId);
    if (group && group.id === nameOrId) this.#byId.set(group.id, group);
    if (!group) {
      const known = (await this.store.listGroups()).map((g) => g.name);
      throw new AuthorityError(
        'GROUP_NOT_FOUND',
        `no product group "${nameOrId.slice(0, 80)}"; known groups: ${known.length ? known.join(', ') : '(none — add one with `volact authority group add`)'}`,
      );
    }
    return group;
  }

  /** The names of groups given by id, in their order. */
  async names(ids: readonly string[]): Promise<string[]> {
    return (await Promise.all(ids.map((id) => this.find(id)))).map((g) => g.name);
  }
}

/**
 * The file a publisher ships inside its product: the trust bundle (the current root as
 * `rootPublicKey`, every root clients may know with its validity, the online keys'
 * delegations: docs/trust.md "The trust bundle"), group, GVLK, policy. The GVLK is derived from
 * the authority's first root: it never changes when the roots rotate (installations keep it).
 * `url`: where installations activate a MAK online (the product's default authority).
 */
export function productConfigFor(
  group: ProductGroup,
  authority: {
    name: string;
    bundle: { rootPublicKey: string; roots: ProductConfig['authority']['roots']; delegations: string[] };
    identityRootPublicKeyRaw: Buffer;
  },
  url: string | undefined,
): ProductConfig {
  if (url !== undefined) {
    try {
      authorityEndpoint(url, '/');
    } catch (err) {
      throw invalidField('url', (err as Error).message);
    }
  }
  const { rootPublicKey, roots, delegations } = authority.bundle;
  return {
    format: 'volact-product-config/1',
    authority: {
      rootPublicKey,
      name: authority.name,
      ...(url === undefined ? {} : { url: new URL(url).origin }),
      ...(roots === undefined ? {} : { roots }),
      ...(delegations.length === 0 ? {} : { delegations }),
    },
    group: { id: group.id, name: group.name, kind: group.kind, threshold: group.threshold },
    gvlk: gvlkFor(authority.identityRootPublicKeyRaw, guidToBytes(group.id)).text,
    policy: defaultPolicy(),
  };
}
