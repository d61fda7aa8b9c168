/**
 * The host's trust check against a scripted authority (the routes of docs/trust.md, answering
 * what each test sets): fetching and stapling the host status, refusing an older list, a root
 * switch, HOST_REVOKED, an authority that cannot be reached. The same against the real authority
 * is in trust-sync.authority.test.ts.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  ManualClock,
  decodeActivationResponse,
  decodeHostStatus,
  fileSigner,
  generateSigningKeyPair,
  hostKeyRefOf,
  issueHostCertificate,
  keyIdHex,
  makeDelegation,
  makeHostStatus,
  makeKey,
  makeRevocationList,
  makeRootTransition,
  verifyHostStatus,
  type SigningKeyPair,
} from '@volact/core';
import { HostState } from './host-state.js';
import { hostStatus, startKmsHost, type RunningKmsHost } from './host.js';
import { ask, requestPayload } from './test-fixture.js';
import { extensionAreaOf } from './trust-sync.js';
import { stapleTestHostStatus } from './test-trust.js';

const GROUP = { id: '0a0b0c0d-0000-4000-8000-000000000001', name: 'office14', threshold: 5 };

/** A key pair usable both as the older `{ privateKey, publicKeyRaw }` root and as a Signer. */
function rootKey(): SigningKeyPair & ReturnType<typeof fileSigner> {
  const pair = generateSigningKeyPair();
  return { ...pair, ...fileSigner(pair) };
}

interface Script {
  current: ReturnType<typeof rootKey>;
  roots: ReturnType<typeof rootKey>[];
  transitions: Buffer[];
  delegations: Buffer[];
  listVersion: number;
  /** The list version the host status (and the list sent with it) names, when not listVersion. */
  statusListVersion?: number;
  revoked: boolean;
  down: boolean;
  statusCalls: number;
  activations: number;
}

describe('KMS host trust check (scripted authority)', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let clock: ManualClock;
  let script: Script;
  let hostPair: SigningKeyPair;
  let host: RunningKmsHost | undefined;
  let logLines: { level: number; msg: string }[];

  const certificateUnder = (root: ReturnType<typeof rootKey>, issuedAt: number) =>
    issueHostCertificate(
      {
        hostPublicKey: hostPair.publicKeyRaw,
        serial: randomUUID(),
        hostKeyId: '00000000-0000-4000-8000-0000000000ff',
        issuedAt,
        expiresAt: issuedAt + 30 * DAY,
        groupIds: [GROUP.id],
      },
      root,
    );
  const list = (root = script.current, listVersion = script.listVersion) =>
    makeRevocationList({ listVersion, issuedAt: clock.now(), nextUpdate: clock.now() + 7 * DAY, entries: [] }, root);
  const status = (root = script.current) =>
    makeHostStatus(
      {
        hostKeyRef: hostKeyRefOf(hostPair.publicKeyRaw),
        listVersion: script.statusListVersion ?? script.listVersion,
        issuedAt: clock.now(),
        nextUpdate: clock.now() + 7 * DAY,
      },
      root,
    );

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volact-host-trust-'));
    clock = new ManualClock(Date.UTC(2026, 5, 1));
    const a = rootKey();
    script = {
      current: a,
      roots: [a],
      transitions: [],
      delegations: [],
      listVersion: 3,
      revoked: false,
      down: false,
      statusCalls: 0,
      activations: 0,
    };
    server = createServer((req, res) => {
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (script.down) {
        send(503, { error: { code: 'STORE_UNAVAILABLE', message: 'down' } });
        return;
      }
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        if (req.method === 'GET' && req.url === '/v1/trust') {
          send(200, {
            roots: script.roots.map((r) => ({
              publicKey: r.publicKeyRaw.toString('base64'),
              keyId: keyIdHex(r.publicKeyRaw),
              validFrom: '2026-01-01T00:00:00.000Z',
              state: r === script.current ? 'current' : 'published',
            })),
            transitions: script.transitions.map((t) => t.toString('base64')),
            delegations: script.delegations.map((d) => d.toString('base64')),
            revocationList: list().toString('base64'),
            later: 'a field this host does not know',
          });
        } else if (req.method === 'POST' && req.url === '/v1/host-status') {
          script.statusCalls++;
          if (script.revoked) {
            send(403, { error: { code: 'HOST_REVOKED', message: 'host key revoked on 2026-06-01' } });
            return;
          }
          send(200, {
            status: status().toString('base64'),
            list: list(script.current, script.statusListVersion ?? script.listVersion).toString('base64'),
          });
        } else if (req.method === 'POST' && req.url === '/v1/host-activations') {
          script.activations++;
          const cert = certificateUnder(script.current, clock.now());
          send(201, {
            certificate: cert.toString('base64'),
            expiresAt: new Date(clock.now() + 30 * DAY).toISOString(),
            hostKeyId: '00000000-0000-4000-8000-0000000000ff',
            hostsUsed: 1,
            hostLimit: 6,
            groups: [{ ...GROUP, kind: 'app' }],
          });
        } else send(404, { error: { code: 'NOT_FOUND', message: req.url ?? '' } });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}`;
    const state = HostState.installKey(join(dir, 'host'), makeKey('kms-host').text, 'hw-1', clock.now());
    hostPair = state.signingKey();
    state.recordActivation({
      authorityUrl: url,
      certificate: certificateUnder(a, clock.now()).toString('base64'),
      activatedAt: new Date(clock.now()).toISOString(),
      groups: [GROUP],
    });
    logLines = [];
    host = undefined;
  });

  afterEach(async () => {
    await host?.close();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  const logger = () =>
    pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
          done();
        },
      }),
    );
  const start = async () => {
    host = await startKmsHost({
      dataDir: join(dir, 'host'),
      listen: { host: '127.0.0.1', port: 0 },
      clock,
      logger: logger(),
    });
    const outcome = await host.checkNow(); // the start's check, awaited
    return { host, outcome };
  };

  it('fetches its host status at start and staples it, with the records, to version-2 answers only', async () => {
    const b = rootKey();
    script.transitions = [
      makeRootTransition(
        { nextPublicKey: b.publicKeyRaw, issuedAt: clock.now(), nextValidFrom: clock.now() + DAY },
        script.current,
        b,
      ),
    ];
    script.delegations = [
      makeDelegation(
        {
          delegatePublicKey: generateSigningKeyPair().publicKeyRaw,
          sequence: 1,
          validFrom: clock.now(),
          validUntil: clock.now() + 90 * DAY,
          purposes: 1,
        },
        script.current,
      ),
    ];
    const { host: h, outcome } = await start();
    expect(outcome.warnings).toEqual([]);
    expect(script.statusCalls).toBeGreaterThanOrEqual(1);
    const v2 = decodeActivationResponse(await ask(h.address, requestPayload(GROUP.id)));
    expect(v2.protocolVersion).toBe(2);
    const stapled = decodeHostStatus(v2.extensions.hostStatus!);
    expect(verifyHostStatus(stapled, script.current.publicKeyRaw)).toBe(true);
    expect(stapled.hostKeyRef).toEqual(hostKeyRefOf(hostPair.publicKeyRaw));
    expect(v2.extensions.transitions).toEqual(script.transitions);
    expect(v2.extensions.delegations).toEqual(script.delegations);
    // a client before version 2 gets the version-1 answer: no area at all
    const v1Payload = await ask(h.address, encodeV1(requestPayload(GROUP.id)));
    const v1 = decodeActivationResponse(v1Payload);
    expect(v1.protocolVersion).toBe(1);
    expect(v1Payload.length).toBe(72 + 2 + v1.certificate.length + 1 + 33 * v1.proof.length + 64);
    const s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.hostStatus.state).toBe('current');
    expect(s.revocationList?.version).toBe(3);
    expect(s.roots.map((r) => [r.keyId, r.source])).toEqual([
      [keyIdHex(script.current.publicKeyRaw), 'authority'],
      [keyIdHex(b.publicKeyRaw), 'transition'],
    ]);
    expect(s.warnings).toEqual([]);
  });

  it('staples what host.json holds at start even when the authority is down, and warns', async () => {
    await start();
    await host!.close();
    host = undefined;
    script.down = true;
    clock.advance(HOUR);
    const { host: h, outcome } = await start();
    expect(outcome.warnings.join(' ')).toContain('AUTHORITY_UNREACHABLE');
    const r = decodeActivationResponse(await ask(h.address, requestPayload(GROUP.id)));
    expect(r.extensions.hostStatus).toBeDefined();
    expect(logLines.some((l) => l.level === 40 && /trust check could not complete/.test(l.msg))).toBe(true);
    expect(hostStatus(join(dir, 'host'), clock).trust.lastError?.code).toBe('AUTHORITY_UNREACHABLE');
  });

  it('refuses a revocation list older than the one it holds (REVOCATION_LIST_STALE), keeping the newer', async () => {
    script.listVersion = 9;
    await start();
    script.listVersion = 8; // a replayed or rolled-back authority
    clock.advance(6 * HOUR);
    const outcome = await host!.checkNow();
    expect(outcome.warnings.join(' ')).toContain('REVOCATION_LIST_STALE');
    const s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.revocationList?.version).toBe(9);
    expect(s.hostStatus.listVersion).toBe(9);
  });

  it('refuses a list and a status signed by a root it does not trust (listed by the reply itself), and still takes the genuine ones after', async () => {
    const genuine = script.current;
    await start();
    const stranger = rootKey();
    // a rogue proxy or a misconfigured URL: its own root listed as current, a list and a status at 2^40
    script.current = stranger;
    script.roots = [stranger];
    script.listVersion = 2 ** 40;
    clock.advance(6 * HOUR);
    const rogue = await host!.checkNow();
    expect(rogue.warnings.join(' ')).toMatch(
      /REVOCATION_LIST_INVALID: the revocation list is signed by root .* does not trust/,
    );
    expect(rogue.warnings.join(' ')).toMatch(/the host status is signed by root .* does not trust/);
    expect(rogue.rootChanged).toBe(false); // no re-certification under the stranger
    expect(script.activations).toBe(0);
    let s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.revocationList?.version).toBe(3);
    expect(s.hostStatus.listVersion).toBe(3);
    // the genuine authority again, at version 4: taken, not "stale"
    script.current = genuine;
    script.roots = [genuine];
    script.listVersion = 4;
    clock.advance(6 * HOUR);
    const back = await host!.checkNow();
    expect(back.warnings).toEqual([]);
    s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.revocationList?.version).toBe(4);
    expect(s.hostStatus.listVersion).toBe(4);
    const r = decodeActivationResponse(await ask(host!.address, requestPayload(GROUP.id)));
    expect(verifyHostStatus(decodeHostStatus(r.extensions.hostStatus!), genuine.publicKeyRaw)).toBe(true);
  });

  it('ignores a forged transition record: the root it names stays untrusted, is not handed out, signs nothing the host keeps', async () => {
    const genuine = script.current;
    await start();
    const s1 = rootKey();
    const s2 = rootKey();
    // one claims the genuine root as its signer (the stranger's signature), one chains from a stranger
    const impostor = { ...s1, keyId: genuine.keyId, publicKeyRaw: genuine.publicKeyRaw };
    const claimed = makeRootTransition(
      { nextPublicKey: s2.publicKeyRaw, issuedAt: clock.now() + 1000 * DAY, nextValidFrom: clock.now() },
      impostor,
      s2,
    );
    const chained = makeRootTransition(
      { nextPublicKey: s2.publicKeyRaw, issuedAt: clock.now() + 1000 * DAY, nextValidFrom: clock.now() },
      s1,
      s2,
    );
    script.transitions = [claimed, chained];
    script.roots = [genuine, s1, s2];
    script.current = s2;
    script.listVersion = 2 ** 40;
    clock.advance(6 * HOUR);
    const outcome = await host!.checkNow();
    expect(outcome.warnings.join(' ')).toContain('TRUST_RECORD_INVALID: 2 root-transition record(s)');
    expect(outcome.rootChanged).toBe(false);
    expect(script.activations).toBe(0);
    const held = HostState.open(join(dir, 'host')).trust;
    expect(held.transitions).toEqual([]);
    expect(hostStatus(join(dir, 'host'), clock).trust.revocationList?.version).toBe(3);
    const r = decodeActivationResponse(await ask(host!.address, requestPayload(GROUP.id)));
    expect(r.extensions.transitions).toHaveLength(0);
    // the genuine list is still taken afterwards
    script.current = genuine;
    script.listVersion = 5;
    clock.advance(6 * HOUR);
    await host!.checkNow();
    expect(hostStatus(join(dir, 'host'), clock).trust.revocationList?.version).toBe(5);
  });

  it('a host certified under the next root pins that root and still hands out the record to it from the previous one', async () => {
    const a = script.current;
    const b = rootKey();
    const record = makeRootTransition(
      { nextPublicKey: b.publicKeyRaw, issuedAt: clock.now(), nextValidFrom: clock.now() },
      a,
      b,
    );
    script.transitions = [record];
    script.roots = [a, b];
    script.current = b;
    HostState.open(join(dir, 'host')).recordActivation({
      authorityUrl: url,
      certificate: certificateUnder(b, clock.now()).toString('base64'),
      activatedAt: new Date(clock.now()).toISOString(),
      groups: [GROUP],
    });
    const { outcome } = await start();
    expect(outcome.warnings).toEqual([]);
    const held = HostState.open(join(dir, 'host')).trust;
    expect(held.anchors).toEqual([b.publicKeyRaw.toString('base64')]);
    expect(held.transitions).toEqual([record.toString('base64')]);
    const r = decodeActivationResponse(await ask(host!.address, requestPayload(GROUP.id)));
    expect(r.extensions.transitions).toEqual([record]);
    expect(verifyHostStatus(decodeHostStatus(r.extensions.hostStatus!), b.publicKeyRaw)).toBe(true);
  });

  it('refuses a host status naming a list older than the one it holds (REVOCATION_LIST_STALE), keeping its status', async () => {
    await start(); // status and list at version 3
    const before = HostState.open(join(dir, 'host')).trust.hostStatus;
    script.listVersion = 9; // /v1/trust hands out version 9 …
    script.statusListVersion = 5; // … and the status names version 5 (a replayed or lagging node)
    clock.advance(6 * HOUR);
    const outcome = await host!.checkNow();
    expect(outcome.warnings.join(' ')).toMatch(
      /REVOCATION_LIST_STALE: the host status names revocation list version 5/,
    );
    const s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.revocationList?.version).toBe(9);
    expect(HostState.open(join(dir, 'host')).trust.hostStatus).toBe(before);
  });

  it('re-certifies at once when the authority switched roots, with most of its certificate left', async () => {
    await start();
    const before = HostState.open(join(dir, 'host')).certificate()!;
    const b = rootKey();
    // the authority hands out the record from a to b (the host learns b only through it)
    script.transitions = [
      makeRootTransition(
        { nextPublicKey: b.publicKeyRaw, issuedAt: clock.now(), nextValidFrom: clock.now() },
        script.current,
        b,
      ),
    ];
    script.roots = [script.current, b];
    script.current = b;
    clock.advance(6 * HOUR);
    const outcome = await host!.checkNow();
    expect(outcome.rootChanged).toBe(true);
    expect(outcome.renewalError).toBeUndefined();
    expect(outcome.renewal?.renewed).toBe(true);
    const after = HostState.open(join(dir, 'host')).certificate()!;
    expect(before.issuer.toString('hex')).toBe(keyIdHex(script.roots[0]!.publicKeyRaw));
    expect(after.issuer.toString('hex')).toBe(keyIdHex(b.publicKeyRaw));
    // answers now carry the new certificate and a status signed by the new root
    const r = decodeActivationResponse(await ask(host!.address, requestPayload(GROUP.id)));
    expect(r.certificate).toEqual(after.encoded);
    expect(verifyHostStatus(decodeHostStatus(r.extensions.hostStatus!), b.publicKeyRaw)).toBe(true);
    // and the next check does not re-certify again
    const again = await host!.checkNow();
    expect(again.rootChanged).toBe(false);
    expect(again.renewal?.renewed).toBe(false);
    expect(script.activations).toBe(1);
  });

  it('HOST_REVOKED: logs an error naming the fix, keeps answering with its last status until it ends', async () => {
    await start();
    script.revoked = true;
    clock.advance(6 * HOUR);
    const outcome = await host!.checkNow();
    expect(outcome.revoked).toBe(true);
    const err = logLines.find((l) => l.level === 50 && /revoked this host's key/.test(l.msg));
    expect(err?.msg).toContain('volact host activate --new-key-pair');
    const r = decodeActivationResponse(await ask(host!.address, requestPayload(GROUP.id)));
    expect(r.extensions.hostStatus).toBeDefined(); // made before the revocation: clients refuse it at its end
    const s = hostStatus(join(dir, 'host'), clock).trust;
    expect(s.hostStatus.state).toBe('revoked');
    expect(s.warnings.join(' ')).toContain('revoked');
  });

  it('warns at every check while its status ends within 2 days', async () => {
    await start();
    script.down = true;
    clock.advance(5 * DAY + 1);
    logLines = [];
    await host!.checkNow();
    expect(logLines.filter((l) => l.level === 40 && /host status ends/.test(l.msg))).toHaveLength(1);
    clock.advance(6 * HOUR);
    await host!.checkNow();
    expect(logLines.filter((l) => l.level === 40 && /host status ends/.test(l.msg))).toHaveLength(2);
    expect(hostStatus(join(dir, 'host'), clock).trust.warnings.join(' ')).toContain('ends');
    clock.advance(2 * DAY);
    expect(hostStatus(join(dir, 'host'), clock).trust.hostStatus.state).toBe('expired');
  });

  it('does not staple a status that names another host key', async () => {
    await start();
    const state = HostState.open(join(dir, 'host'));
    const other = makeHostStatus(
      {
        hostKeyRef: hostKeyRefOf(generateSigningKeyPair().publicKeyRaw),
        listVersion: 3,
        issuedAt: clock.now(),
        nextUpdate: clock.now() + DAY,
      },
      script.current,
    );
    const area = extensionAreaOf({ ...state.trust, hostStatus: other.toString('base64') }, state.certificate());
    expect(area).toEqual(Buffer.from([0, 0]));
  });
});

/** The same request in version 1 (byte 0 and the check bytes). */
function encodeV1(v2: Buffer): Buffer {
  const out = Buffer.from(v2);
  out[0] = 1;
  // recompute the check: SHA-256 of bytes 0..60, first 8
  createHash('sha256').update(out.subarray(0, 60)).digest().copy(out, 60, 0, 8);
  return out;
}

describe('stapleTestHostStatus (test support)', () => {
  it('records a status for the host key, signed by the given root, that the host staples at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volact-host-staple-'));
    try {
      const clock = new ManualClock(Date.UTC(2026, 5, 1));
      const root = rootKey();
      const state = HostState.installKey(join(dir, 'h'), makeKey('kms-host').text, 'hw-2', clock.now());
      state.recordActivation({
        // a phone host: no authority is asked, what host.json holds is stapled
        authorityUrl: 'phone',
        certificate: issueHostCertificate(
          {
            hostPublicKey: state.signingKey().publicKeyRaw,
            serial: randomUUID(),
            hostKeyId: randomUUID(),
            issuedAt: clock.now(),
            expiresAt: clock.now() + 30 * DAY,
            groupIds: [GROUP.id],
          },
          root,
        ).toString('base64'),
        activatedAt: new Date(clock.now()).toISOString(),
        groups: [GROUP],
      });
      stapleTestHostStatus(join(dir, 'h'), root);
      const h = await startKmsHost({ dataDir: join(dir, 'h'), listen: { host: '127.0.0.1', port: 0 }, clock });
      try {
        const r = decodeActivationResponse(await ask(h.address, requestPayload(GROUP.id)));
        const s = decodeHostStatus(r.extensions.hostStatus!);
        expect(verifyHostStatus(s, root.publicKeyRaw)).toBe(true);
        expect(s.nextUpdate).toBe(clock.now() + 7 * DAY);
      } finally {
        await h.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
