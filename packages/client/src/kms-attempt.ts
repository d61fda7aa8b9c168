import { randomBytes } from 'node:crypto';
import {
  MINUTE,
  encodeActivationRequest,
  guidToBytes,
  licenceStateCode,
  type Clock,
  type LicenceState,
} from '@volact/core';
import {
  hostIntervals,
  renewalAt,
  hostsBeforeDiscovery,
  hostsFromDiscovery,
  type AttemptIntervals,
  type HostSource,
} from './attempt-policy.js';
import { DEFAULT_KMS_SERVICE, type DiscoveryResult } from './discovery.js';
import { ClientError } from './errors.js';
import { exchangeWithKmsHost } from './kms-exchange.js';
import { parseKmsAddress } from './kms-address.js';
import type { ActivationCode } from './licence-status.js';
import type { AttemptRecord, LicenceRecord } from './licence-store.js';
import type { ClientTrust } from './trust.js';
import { verifyKmsResponse, type VerifiedResponse } from './verify-response.js';

/**
 * KMS activation: the hosts in the attempt policy's order (the manual host alone; else the
 * cached one, then DNS), each asked once; the first verified answer decides. The result says
 * what to record; nothing is stored here.
 */

export interface KmsAttemptInput {
  readonly record: LicenceRecord;
  /** The licence state before the attempt (the request reports it). */
  readonly before: LicenceState;
  readonly now: number;
  /** Read again when an answer arrives: the clock-skew check uses the time it is checked. */
  readonly clock: Clock;
  /** Whom to believe; a live answer's records are learned into it (the caller stores them). */
  readonly trust: ClientTrust;
  readonly timeoutMs: number;
  readonly discover: () => Promise<DiscoveryResult>;
  /** Why the directory gave no licence (tried first): named if no host is found either. */
  readonly directoryFailure: { code: ActivationCode; message: string } | null;
}

type CachedHost = LicenceRecord['discovery']['cached'];

/**
 * `cached`: the host cache after the attempt (a cached host that stopped answering is
 * forgotten, a host found in DNS that answered is kept); recorded whatever the outcome.
 */
export type KmsAttemptResult =
  | {
      ok: true;
      cached: CachedHost;
      intervals: AttemptIntervals;
      evidence: string;
      host: string;
      via: HostSource;
      domain?: string;
      count: number;
      threshold: number;
    }
  | {
      ok: false;
      cached: CachedHost;
      code: ActivationCode;
      message: string;
      extra: Partial<AttemptRecord>;
      /** The host's intervals when one answered (below the threshold). */
      intervals?: AttemptIntervals;
    };

interface Candidate {
  readonly address: string;
  readonly connect: string;
  readonly domain?: string;
}

/** The KMS hosts to try, in the attempt policy's order; DNS is asked only when the ones before fail. */
async function* kmsCandidates(
  record: LicenceRecord,
  discover: () => Promise<DiscoveryResult>,
  found: { dnsFailures: DiscoveryResult['errors']; searched: string[] },
): AsyncGenerator<Candidate & { via: HostSource }> {
  const c = record.discovery.cached;
  const cached: Candidate | null = c ? { address: c.address, connect: c.connect ?? c.address, domain: c.domain } : null;
  const manual = record.kmsHost ? { address: record.kmsHost, connect: record.kmsHost } : null;
  const caching = record.discovery.caching;
  const plan = hostsBeforeDiscovery({ manual, cached, caching });
  for (const { host, via } of plan.first) yield { ...host, via };
  if (!plan.lookUp) return;
  const result = await discover();
  found.searched.push(...result.domains);
  found.dnsFailures.push(...result.errors);
  const hosts = result.hosts.map((h) => ({ address: h.address, connect: h.connect, domain: h.domain }));
  for (const h of hostsFromDiscovery(hosts, { cached, caching }, (a, b) => a.address === b.address)) {
    yield { ...h, via: 'dns' };
  }
}

/**
 * One exchange with a KMS host: this installation's request, the answer verified live (nonce,
 * client, group, chain to a trusted root by the certificate's issuer, the host's revocation status, the clock as it is when the answer arrives). Throws
 * a ClientError when the host does not answer or its answer does not verify.
 */
export async function askKmsHost(ask: {
  readonly connect: string;
  readonly record: LicenceRecord;
  /** The state the request reports (the host's statistics count it). */
  readonly licenceState: number;
  readonly clientTime: number;
  readonly clock: Clock;
  readonly trust: ClientTrust;
  readonly timeoutMs: number;
}): Promise<{ payload: Buffer; verified: VerifiedResponse }> {
  const r = ask.record;
  const groupId = guidToBytes(r.product.group.id);
  const clientId = guidToBytes(r.clientMachineId);
  const nonce = randomBytes(16);
  const request = encodeActivationRequest({
    licenceState: ask.licenceState,
    groupId,
    clientId,
    nonce,
    clientTime: ask.clientTime,
  });
  const payload = await exchangeWithKmsHost(parseKmsAddress(ask.connect), request, ask.timeoutMs);
  const verified = verifyKmsResponse(payload, {
    trust: ask.trust,
    groupId,
    clientId,
    mode: { kind: 'live', nonce },
    now: ask.clock.now(),
    maxClockSkew: r.product.policy.maxClockSkewMinutes * MINUTE,
  });
  return { payload, verified };
}

export async function attemptKms(input: KmsAttemptInput): Promise<KmsAttemptResult> {
  const { record: r, now } = input;
  const found = { dnsFailures: [] as DiscoveryResult['errors'], searched: [] as string[] };
  let cached = r.discovery.cached;
  let lastFailure: { code: ActivationCode; message: string; extra: Partial<AttemptRecord> } | null = null;
  for await (const candidate of kmsCandidates(r, input.discover, found)) {
    const via = {
      host: candidate.address,
      via: candidate.via,
      ...(candidate.domain ? { domain: candidate.domain } : {}),
    };
    let payload: Buffer;
    let verified;
    try {
      ({ payload, verified } = await askKmsHost({
        connect: candidate.connect,
        record: r,
        licenceState: licenceStateCode(input.before),
        clientTime: now,
        clock: input.clock,
        trust: input.trust,
        timeoutMs: input.timeoutMs,
      }));
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      // An unreachable or untrusted host: try the next one (an emulator published in DNS
      // must not keep genuine hosts from being used). A cached host that stopped answering
      // is forgotten: discovery runs again.
      lastFailure = { code: err.code, message: err.message, extra: via };
      if (candidate.via === 'cache') cached = null;
      continue;
    }
    const { response } = verified;
    const intervals = hostIntervals(response);
    if (candidate.via === 'dns' && r.discovery.caching) {
      cached = { address: candidate.address, connect: candidate.connect, domain: candidate.domain ?? '', foundAt: now };
    }
    const threshold = r.product.group.threshold;
    if (response.count < threshold) {
      return {
        ok: false,
        cached,
        code: 'KMS_THRESHOLD_NOT_MET',
        message: `count ${response.count} of ${threshold}: the host has counted ${response.count} client(s) of ${r.product.group.name} in its window; activation needs ${threshold}. Retrying in ${Math.round(intervals.activationMs / MINUTE)} minutes`,
        extra: { ...via, count: response.count, threshold },
        intervals,
      };
    }
    return {
      ok: true,
      cached,
      intervals,
      evidence: payload.toString('base64'),
      ...via,
      count: response.count,
      threshold,
    };
  }
  if (lastFailure) return { ok: false, cached, ...lastFailure };
  const why = noHostFound(found.searched, found.dnsFailures);
  if (input.directoryFailure) {
    return {
      ok: false,
      cached,
      code: input.directoryFailure.code,
      message: `${input.directoryFailure.message}; and ${why}`,
      extra: {},
    };
  }
  return { ok: false, cached, code: 'NO_KMS_HOST', message: why, extra: {} };
}

/** What to do when no host was set and DNS gave none: per domain searched, why. */
function noHostFound(searched: readonly string[], dnsFailures: readonly { domain: string; message: string }[]): string {
  const service = DEFAULT_KMS_SERVICE;
  if (searched.length === 0) {
    return 'no KMS host is set and no DNS domain is known: run `volact client set-host --state-dir DIR HOST:PORT` or `volact client set-domain --state-dir DIR DOMAIN`';
  }
  return `no KMS host is set and DNS discovery found none: ${searched
    .map((d) => {
      const failure = dnsFailures.find((f) => f.domain === d);
      return failure
        ? `${service}.${d}: ${failure.message}`
        : `no SRV record for ${service}.${d}: is the host publishing? see \`volact host status\``;
    })
    .join('; ')}`;
}

/** The record after a KMS host's verified answer reached the threshold. */
export function withKmsActivation(
  record: LicenceRecord,
  result: Extract<KmsAttemptResult, { ok: true }>,
  now: number,
): LicenceRecord {
  const { host, via, domain, count, threshold, intervals } = result;
  const found = via === 'dns' ? `found in DNS, ${domain}` : via === 'cache' ? 'cached from DNS' : 'set by hand';
  return {
    ...record,
    discovery: { ...record.discovery, cached: result.cached },
    intervals,
    activation: { method: 'kms', evidence: result.evidence, host, receivedAt: now },
    lastAttempt: {
      at: now,
      ok: true,
      message: `activated by ${host} (${found}; count ${count} of ${threshold})`,
      host,
      via,
      ...(domain ? { domain } : {}),
      count,
      threshold,
    },
    nextAttemptAt: renewalAt(now, intervals),
    nonGenuineSince: null,
  };
}

/**
 * The host cache after an attempt: as the attempt left it (a cached host that stopped answering
 * forgotten, one that answered kept), unless set-domain, set-caching or the DNS server changed
 * while the hosts were asked; then the cache the setter left stands, so an old domain's host is
 * not written back.
 */
export function cacheAfterAttempt(
  asked: LicenceRecord['discovery'],
  current: LicenceRecord['discovery'],
  attemptCached: LicenceRecord['discovery']['cached'],
): LicenceRecord['discovery']['cached'] {
  const same =
    asked.caching === current.caching &&
    asked.dnsServer === current.dnsServer &&
    asked.domains.length === current.domains.length &&
    asked.domains.every((d, i) => d === current.domains[i]);
  return same ? attemptCached : current.cached;
}
