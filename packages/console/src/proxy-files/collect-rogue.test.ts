import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { AGENT_API_VERSION, ManualClock, agentProbeProofAt, parseIidFile, sha256 } from '@volact/core';
import { VolumeConsole } from '../console.js';

/**
 * What an agent answers is its machine user's to choose: one agent's host name (a control
 * character, or "" — the honest agent's fallback when os.hostname() fails), installed key or
 * installation ID must not void the installation-ID file of every other machine. The agents here
 * are fakes that prove their token like a real one and answer what a test says, over a real
 * installation's status and installation ID.
 */
const TOKEN = 'collect-rogue-agent-token-0123456';

let root: string;
let clock: ManualClock;
/** A real installation's status (a MAK installed), as a real agent answers GET /v1/status. */
let genuine: Record<string, unknown>;
let genuineIid: string;
const servers: http.Server[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-collect-rogue-'));
  clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  const product = await authority.productConfig('office14');
  const mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 10 })).key;
  await authority.close();
  const licence = Licence.init({ stateDir: join(root, 'machine'), product, hardwareId: 'hw-1', clock });
  licence.installKey(mak);
  genuineIid = licence.installationId();
  genuine = {
    ...JSON.parse(JSON.stringify(licence.status())),
    userOperations: false,
    agent: { version: AGENT_API_VERSION },
  } as Record<string, unknown>;
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  rmSync(root, { recursive: true, force: true });
});

interface Answers {
  hostName?: string;
  installedKey?: string | null;
  installationId?: string;
}

/** An agent that proves its token (and takes the console's enrolment), answering as given. */
async function fakeAgent(answers: Answers): Promise<string> {
  let token = TOKEN;
  let enrolled = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://agent');
      const send = (code: number, body: unknown) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/v1/probe') {
        const nonce = url.searchParams.get('nonce') ?? '';
        const socket = req.socket;
        return send(200, {
          agent: { version: AGENT_API_VERSION },
          enrolled,
          proof: agentProbeProofAt(sha256(Buffer.from(token)), nonce, socket.localAddress ?? '', socket.localPort ?? 0),
        });
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        return send(401, { error: { code: 'UNAUTHORIZED', message: 'no' } });
      }
      if (url.pathname === '/v1/enrol' && req.method === 'POST') {
        token = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { token: string }).token;
        enrolled = true;
        return send(200, { enrolled: true });
      }
      if (url.pathname === '/v1/status') {
        return send(200, {
          ...genuine,
          ...('installedKey' in answers ? { installedKey: answers.installedKey } : {}),
          machine: {
            hostName: answers.hostName ?? 'pc-honest',
            os: 'Linux',
            osVersion: '6',
            productVersion: null,
            lastBootAt: null,
          },
        });
      }
      if (url.pathname === '/v1/installation-id')
        return send(200, { installationId: answers.installationId ?? genuineIid });
      return send(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let n = 0;
/** A console with an honest machine, the odd one, and another honest one (added by address, refreshed once). */
async function collect(odd: Answers) {
  const c = VolumeConsole.init(join(root, `console-${++n}`), { clock });
  const addresses = [await fakeAgent({}), await fakeAgent(odd), await fakeAgent({ hostName: 'pc-other' })];
  const added = await c.addMachines(addresses, TOKEN); // by address: the file names them by host name
  await c.refresh('all');
  const outcome = await c.collectInstallationIds('all', {});
  const file = parseIidFile(outcome.file);
  await c.close();
  const oddId = Number(added.find((m) => m.address === addresses[1])?.id);
  return {
    address: addresses[1] as string,
    /** The odd machine's result. */
    result: outcome.results.find((r) => r.address === addresses[1]),
    /** How many machines succeeded. */
    ok: outcome.results.filter((r) => r.ok).length,
    /** The odd machine's entry of the file. */
    entry: file.entries.find((e) => e.machineId === oddId),
    /** The names in the file, sorted. */
    names: file.entries.map((e) => e.machine).sort(),
  };
}

describe("one agent's answer vs the installation-ID file of the others", () => {
  it.each([
    ['a control character', 'pc-evil\u0007', 'pc-evil'],
    ['an escape sequence', '\u001b]0;pwned\u0007pc-esc', 'pc-esc'],
  ])('a host name with %s: the file is written, the name cleaned', async (_, hostName, shown) => {
    const { ok, entry, names } = await collect({ hostName });
    expect(ok).toBe(3);
    expect(entry?.machine).toBe(shown);
    expect(names).toEqual(['pc-honest', 'pc-other', shown].sort());
  });

  it('an empty host name (os.hostname() failed), or one of control characters only: named by its address', async () => {
    for (const hostName of ['', '\u0007\u0007\t']) {
      const { ok, address, entry } = await collect({ hostName });
      expect(ok).toBe(3);
      expect(entry?.machine).toBe(address);
    }
  });

  it('an empty or control-character installed key: in the file as none / cleaned', async () => {
    expect((await collect({ installedKey: '' })).entry?.installedKey).toBeNull();
    expect((await collect({ installedKey: '\u2026AB\u0007CDE' })).entry?.installedKey).toBe('\u2026ABCDE');
  });

  it.each([
    ['not digits', () => 'not-an-installation-id'],
    ['empty', () => ''],
    ['with a control character', () => `${genuineIid}\u0007`],
    ['with a group too many', () => `${genuineIid}-123456`],
  ])(
    'an installation ID %s: that machine fails alone (AGENT_BAD_RESPONSE), the others are in the file',
    async (_, bad) => {
      const { ok, result, entry, names } = await collect({ installationId: bad() });
      expect(ok).toBe(2);
      expect(result).toMatchObject({ ok: false, code: 'AGENT_BAD_RESPONSE' });
      expect(result?.message).toMatch(/installation ID that is not one/);
      expect(entry).toBeUndefined();
      expect(names).toEqual(['pc-honest', 'pc-other']);
    },
  );
});
