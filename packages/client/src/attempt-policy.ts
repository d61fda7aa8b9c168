import { INTERVAL_BOUNDS, KMS_DEFAULTS, MINUTE, type LicenceState } from '@volact/core';
import type { ActType } from './licence-store.js';

/**
 * The rules an activation attempt follows, with no I/O: which methods it tries and in what
 * order, which KMS hosts it asks, how long it waits after a success or a failure, and when the
 * schedule wakes. `Licence` runs them against the network and the store; the simulator runs
 * the same functions against its in-process fleet, so the two cannot drift apart.
 */

/**
 * One way an attempt can end licensed. `authority`: the installation ID confirmed at the
 * publisher's authority (a MAK or a retail key); `oem` and `token` are carried in and only
 * re-checked, never fetched.
 */
export type AttemptMethod = 'oem' | 'token' | 'authority' | 'directory' | 'kms';

/** The kind of product key installed, as the licence store records it. */
export type InstalledKeyType = 'gvlk' | 'mak' | 'retail';

/**
 * The methods an attempt tries, in order, by act-type and installed key (the reference's
 * /act-type). An OEM marker holds under every type. A token is tried under any and token;
 * under token nothing else is. A MAK or retail key activates at the authority (there is no
 * KMS or directory route for it). With a GVLK: the directory first when the type allows it
 * (an unreadable directory falls back to KMS under any), then KMS.
 */
export function attemptMethods(actType: ActType, keyType: InstalledKeyType): readonly AttemptMethod[] {
  if (actType === 'token') return ['oem', 'token'];
  const carried: AttemptMethod[] = actType === 'any' ? ['oem', 'token'] : ['oem'];
  if (keyType !== 'gvlk') return [...carried, 'authority'];
  if (actType === 'directory') return [...carried, 'directory'];
  if (actType === 'kms') return [...carried, 'kms'];
  return [...carried, 'directory', 'kms'];
}

/** How long to wait before the next attempt, after a success and after a failure. */
export interface AttemptIntervals {
  readonly activationMs: number;
  readonly renewalMs: number;
}

/** What a new installation (or a re-imaged machine) waits until a KMS host says otherwise. */
export const DEFAULT_INTERVALS: AttemptIntervals = {
  activationMs: KMS_DEFAULTS.activationInterval,
  renewalMs: KMS_DEFAULTS.renewalInterval,
};

/** Keeps an interval a host gave within the bounds (a host must not make clients hammer it or go silent). */
export function clampInterval(ms: number, bounds: { readonly min: number; readonly max: number }): number {
  return Math.min(bounds.max, Math.max(bounds.min, ms));
}

/** The intervals a verified KMS response sets, in minutes on the wire, clamped to INTERVAL_BOUNDS. */
export function hostIntervals(response: {
  readonly activationIntervalMin: number;
  readonly renewalIntervalMin: number;
}): AttemptIntervals {
  return {
    activationMs: clampInterval(response.activationIntervalMin * MINUTE, INTERVAL_BOUNDS.activationInterval),
    renewalMs: clampInterval(response.renewalIntervalMin * MINUTE, INTERVAL_BOUNDS.renewalInterval),
  };
}

/** After a success: the next attempt renews at the renewal interval (a token's end comes earlier). */
export function renewalAt(now: number, intervals: AttemptIntervals): number {
  return now + intervals.renewalMs;
}

/**
 * After a failure: a licensed client keeps its licence and waits the renewal interval; any
 * other retries at the activation interval (the reference: 2 hours unlicensed, 7 days licensed).
 */
export function retryAt(now: number, before: LicenceState, intervals: AttemptIntervals): number {
  return now + (before === 'licensed' ? intervals.renewalMs : intervals.activationMs);
}

/** The background schedule wakes at the next attempt or when the current state ends, whichever is first. */
export function nextWakeAt(nextAttemptAt: number, stateEndsAt: number | null): number {
  return Math.min(nextAttemptAt, stateEndsAt ?? Infinity);
}

/** How a KMS host to ask was found. */
export type HostSource = 'manual' | 'cache' | 'dns';

/**
 * The KMS hosts to ask before DNS is looked up: a host set by hand alone (no discovery), else
 * the cached one when caching is on. `lookUp`: whether DNS is asked when these fail.
 */
export function hostsBeforeDiscovery<H>(hosts: {
  readonly manual: H | null;
  readonly cached: H | null;
  readonly caching: boolean;
}): { readonly first: readonly { host: H; via: HostSource }[]; readonly lookUp: boolean } {
  if (hosts.manual !== null) return { first: [{ host: hosts.manual, via: 'manual' }], lookUp: false };
  const cached = hosts.caching ? hosts.cached : null;
  return { first: cached === null ? [] : [{ host: cached, via: 'cache' }], lookUp: true };
}

/**
 * The hosts DNS gave, in its order, each asked once: the cached host (asked first, whether or
 * not it answered) is not asked again.
 */
export function hostsFromDiscovery<H>(
  found: readonly H[],
  asked: { readonly cached: H | null; readonly caching: boolean },
  same: (a: H, b: H) => boolean,
): H[] {
  const cached = asked.caching ? asked.cached : null;
  return cached === null ? [...found] : found.filter((h) => !same(h, cached));
}
