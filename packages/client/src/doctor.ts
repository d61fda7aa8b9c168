import { connect } from 'node:net';
import { LICENCE_STATES, VolactError, type Clock, type LicenceState } from '@volact/core';
import { ClientError } from './errors.js';
import { parseKmsAddress } from './kms-address.js';
import { askKmsHost } from './kms-attempt.js';
import type { DiscoveryResult } from './discovery.js';
import type { LicenceRecord } from './licence-store.js';
import type { ClientTrust } from './trust.js';

export interface DoctorStep {
  /** What was checked, e.g. "dns corp.test", "host kms1.corp.test:1688 certificate". */
  readonly step: string;
  readonly status: 'ok' | 'fail' | 'skip' | 'warn';
  readonly detail: string;
  /** What to do when it failed. */
  readonly fix?: string;
}

export interface DoctorReport {
  /** True when an activation would succeed now by at least one way. */
  readonly ok: boolean;
  /** The first failing step, when nothing works. */
  readonly failedAt: string | null;
  readonly steps: DoctorStep[];
}

export interface DoctorContext {
  readonly record: LicenceRecord;
  readonly trust: ClientTrust;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly status: { state: string; method: string | null };
  discover(): Promise<DiscoveryResult>;
  checkObject(text: string, domain: string): { ok: true; name: string } | { ok: false; code: string; message: string };
}

const FIX_FOR: Record<string, string> = {
  KMS_CERT_UNTRUSTED: "this host was not certified by this product's authority: use the organisation's own KMS host",
  KMS_CERT_EXPIRED: 'the host must renew its certificate: `volact host activate` on the host',
  KMS_CERT_GROUP_MISMATCH: "install a host key that covers this product's group on the host",
  KMS_CLOCK_SKEW: 'fix the time on this machine or the host (NTP)',
  KMS_HOST_STATUS_MISSING:
    'the host must reach the authority to renew its revocation status (every 6 hours): `volact host status` on the host',
  KMS_HOST_REVOKED: 'the publisher revoked this host: use another KMS host',
  KMS_THRESHOLD_NOT_MET: 'more clients must ask this host before any activates (the threshold); they keep retrying',
  KMS_HOST_ERROR: 'read the host refusal above; `volact host status` on the host',
};

function tcpReach(address: string, timeoutMs: number): Promise<string | null> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseKmsAddress(address));
  } catch (err) {
    return Promise.resolve((err as Error).message);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (error: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => done(`no TCP answer within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

/**
 * Walks every step an activation takes and says which one fails and what to do: the
 * configuration, the directory (bind, object), DNS per domain, and for each host its TCP
 * reach, certificate chain, group, clock and count against the threshold. It asks the hosts
 * as an activation does (the host counts this client, as it would), and changes nothing here.
 */
export async function runDoctor(ctx: DoctorContext): Promise<DoctorReport> {
  const r = ctx.record;
  const steps: DoctorStep[] = [];
  let works = false;
  const add = (s: DoctorStep) => steps.push(s);

  add({
    step: 'config',
    status: r.installedKey ? 'ok' : 'fail',
    detail: `product ${r.product.group.name} (threshold ${r.product.group.threshold}), key ${r.installedKey ? r.installedKey.type : 'none'}, state ${ctx.status.state}${ctx.status.method ? ` by ${ctx.status.method}` : ''}`,
    ...(r.installedKey ? {} : { fix: 'install the GVLK or a MAK: `volact client install-key`' }),
  });
  // An OEM marker or a token that licenses needs no network: nothing else to walk.
  const carried = r.activation?.method === 'oem' || r.activation?.method === 'token' ? r.activation.method : null;
  if (carried && ctx.status.method === carried && ctx.status.state === 'licensed') {
    add({
      step: carried,
      status: 'ok',
      detail:
        carried === 'oem' ? 'licensed by an OEM marker (permanent, no network)' : 'licensed by an activation token',
    });
    return { ok: true, failedAt: null, steps };
  }
  if (r.installedKey?.type === 'mak' || r.installedKey?.type === 'retail') {
    // A retail key activates at the authority as a MAK does (step `retail`, the same checks).
    const method = r.installedKey.type;
    const label = method === 'mak' ? 'a MAK' : 'a retail key';
    const activated = ctx.status.method === method;
    add({
      step: method,
      status: activated ? 'ok' : 'warn',
      detail: activated ? `activated with ${label} (permanent)` : `${label} is installed but not activated`,
      ...(activated
        ? {}
        : { fix: '`volact client activate --authority URL`, or by phone: `volact client installation-id`' }),
    });
    return { ok: activated, failedAt: activated ? null : method, steps };
  }

  if (r.directory) {
    const d = r.directory;
    try {
      // Loaded only when a directory is configured (most installations never join one).
      const { readEntries } = await import('@volact/directory');
      const entries = await readEntries(
        {
          url: d.url,
          ...(d.bindDn ? { bindDn: d.bindDn } : {}),
          ...(d.password ? { password: d.password } : {}),
          timeoutMs: ctx.timeoutMs,
        },
        { base: d.base, ...(d.container ? { container: d.container } : {}) },
      );
      add({ step: `directory ${d.domain} bind`, status: 'ok', detail: `read ${entries.length} object(s) at ${d.url}` });
      const checks = entries.map((e) => ({ name: e.name, check: ctx.checkObject(e.content, d.domain) }));
      const good = checks.find((c) => c.check.ok);
      if (good) {
        works = true;
        add({ step: `directory ${d.domain} object`, status: 'ok', detail: `activation object ${good.name} is valid` });
      } else {
        add({
          step: `directory ${d.domain} object`,
          status: 'fail',
          detail: checks.length
            ? checks.map((c) => `${c.name}: ${c.check.ok ? 'ok' : `${c.check.code}: ${c.check.message}`}`).join('; ')
            : `no activation object under ${d.base}`,
          fix: "publish one for this product's group and domain: `volact authority activation-object create`, then `volact directory publish`",
        });
      }
    } catch (err) {
      if (!(err instanceof VolactError)) throw err;
      const { code, message } = err as VolactError;
      add({
        step: `directory ${d.domain} bind`,
        status: 'fail',
        detail: `${code}: ${message}`,
        fix: 'check --url, --bind-dn and the password given to `volact client join-domain`; KMS discovery is used meanwhile',
      });
    }
  }

  let hosts: { address: string; connect: string; how: string }[] = [];
  if (r.kmsHost) {
    add({ step: 'dns', status: 'skip', detail: `a KMS host is set by hand (${r.kmsHost}): DNS is not asked` });
    hosts = [{ address: r.kmsHost, connect: r.kmsHost, how: 'set by hand' }];
  } else {
    const found = await ctx.discover();
    if (found.domains.length === 0) {
      add({
        step: 'dns',
        status: 'fail',
        detail: 'no DNS domain to search (none set, and this machine has none)',
        fix: '`volact client set-domain --state-dir DIR DOMAIN` or `volact client set-host`',
      });
    }
    for (const domain of found.domains) {
      const error = found.errors.find((e) => e.domain === domain);
      const inDomain = found.hosts.filter((h) => h.domain === domain);
      add(
        error
          ? {
              step: `dns ${domain}`,
              status: 'fail',
              detail: `${error.code}: ${error.message}`,
              fix: 'check the DNS server (`set-domain --dns-server`)',
            }
          : inDomain.length
            ? {
                step: `dns ${domain}`,
                status: 'ok',
                detail: `_vlmcs._tcp.${domain}: ${inDomain.map((h) => `${h.address} (priority ${h.priority}, weight ${h.weight})`).join(', ')}`,
              }
            : {
                step: `dns ${domain}`,
                status: 'fail',
                detail: `no SRV record for _vlmcs._tcp.${domain}`,
                fix: 'is the host publishing? see `volact host status`',
              },
      );
    }
    hosts = found.hosts.map((h) => ({ address: h.address, connect: h.connect, how: `found in ${h.domain}` }));
  }

  for (const h of hosts) {
    const reach = await tcpReach(h.connect, ctx.timeoutMs);
    if (reach) {
      add({
        step: `host ${h.address} tcp`,
        status: 'fail',
        detail: `${h.how}; ${reach}`,
        fix: 'is `volact host serve` running, and the port open?',
      });
      continue;
    }
    add({ step: `host ${h.address} tcp`, status: 'ok', detail: `${h.how}; connected` });
    try {
      const { verified } = await askKmsHost({
        connect: h.connect,
        record: r,
        // The installation's real state: the host's statistics stay true when doctor runs.
        licenceState: Math.max(0, LICENCE_STATES.indexOf(ctx.status.state as LicenceState)),
        clientTime: ctx.clock.now(),
        clock: ctx.clock,
        trust: ctx.trust,
        timeoutMs: ctx.timeoutMs,
      });
      const { response, certificate } = verified;
      add({
        step: `host ${h.address} certificate`,
        status: 'ok',
        detail: `certified by this product's authority until ${new Date(certificate.expiresAt).toISOString()}; covers ${r.product.group.name}; clock within ${r.product.policy.maxClockSkewMinutes} min`,
      });
      const enough = response.count >= r.product.group.threshold;
      if (enough) works = true;
      add({
        step: `host ${h.address} count`,
        status: enough ? 'ok' : 'fail',
        detail: `count ${response.count} of ${r.product.group.threshold}`,
        ...(enough ? {} : { fix: FIX_FOR.KMS_THRESHOLD_NOT_MET }),
      });
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      add({
        step: `host ${h.address} ${err.code.startsWith('KMS_CERT') || err.code === 'KMS_BAD_SIGNATURE' ? 'certificate' : 'answer'}`,
        status: 'fail',
        detail: `${err.code}: ${err.message}`,
        fix: FIX_FOR[err.code] ?? 'see the message',
      });
    }
  }
  const failed = steps.find((s) => s.status === 'fail');
  return { ok: works, failedAt: works ? null : (failed?.step ?? null), steps };
}
