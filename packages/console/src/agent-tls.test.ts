import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock, type ProductConfig } from '@volact/core';
import { makeTestPki, type TestPki } from '@volact/client/testing';
import { AgentClient } from './agent-client.js';
import { AGENT_TLS_FILES, installAgentTls, loadAgentTls, type AgentTls } from './agent-tls.js';
import { ConsoleError } from './errors.js';
import { createKeyFile } from './secrets.js';

const TOKEN = 'console-agent-token-0123456789';

let pki: TestPki;
let root: string;
let product: ProductConfig;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));

beforeAll(async () => {
  pki = makeTestPki();
  root = mkdtempSync(join(tmpdir(), 'volact-console-agent-tls-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
});
afterAll(() => {
  pki.remove();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
/** A console data directory (its key file only: agent TLS needs nothing else). */
function consoleDir(): string {
  const dir = join(root, `console-${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  createKeyFile(dir);
  return dir;
}

function failure(action: () => unknown): ConsoleError {
  try {
    action();
  } catch (err) {
    if (err instanceof ConsoleError) return err;
    throw err;
  }
  throw new Error('no failure');
}

async function failureOf(promise: Promise<unknown>): Promise<ConsoleError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConsoleError) return err;
    throw err;
  }
  throw new Error('no failure');
}

const files = (client = pki.client, ca = pki.ca) => ({
  caFile: ca.certFile,
  certFile: client.certFile,
  keyFile: client.keyFile,
});

describe('installAgentTls and loadAgentTls', () => {
  it('copies the checked PEMs into the data dir (0600) and loads them back', () => {
    const dir = consoleDir();
    expect(loadAgentTls(dir)).toBeUndefined();
    const summary = installAgentTls(dir, files());
    expect(summary).toMatchObject({
      subject: 'CN=volact-console',
      issuer: 'CN=agents-ca',
      fingerprint: new X509Certificate(pki.client.cert).fingerprint256,
      expired: false,
      caCertificates: 1,
      files: { ca: join(dir, 'agent-ca.pem'), cert: join(dir, 'agent-client.pem'), key: join(dir, 'agent-client.key') },
    });
    expect(JSON.stringify(summary)).not.toContain('PRIVATE KEY');
    for (const name of Object.values(AGENT_TLS_FILES)) {
      expect(statSync(join(dir, name)).mode & 0o777, name).toBe(0o600);
    }
    expect(loadAgentTls(dir)).toEqual({ ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });

    // Installed again (a renewed certificate): replaced.
    installAgentTls(dir, files(pki.client2));
    expect(loadAgentTls(dir)?.cert).toBe(pki.client2.cert);
  });

  it('tells an expired client certificate by the clock it is given, not the wall clock', () => {
    const validTo = Date.parse(new X509Certificate(pki.client.cert).validTo);
    expect(installAgentTls(consoleDir(), files(), new ManualClock(validTo - 1)).expired).toBe(false);
    expect(installAgentTls(consoleDir(), files(), new ManualClock(validTo + 1)).expired).toBe(true);
  });

  it('refuses a key that does not match the certificate, and every other bad file, naming it; nothing is copied', () => {
    const dir = consoleDir();
    const notPem = join(root, 'not-pem.txt');
    writeFileSync(notPem, 'hello\n');
    const cases: [Parameters<typeof installAgentTls>[1], RegExp][] = [
      [
        { ...files(), keyFile: pki.client2.keyFile },
        /^--key .*second-console\.key is not the key of --cert .*volact-console\.pem/,
      ],
      [{ ...files(), keyFile: pki.server.keyFile }, /^--key .*agent\.key is not the key of --cert/],
      [{ ...files(), caFile: notPem }, /^--ca .*not-pem\.txt holds no PEM certificate/],
      [{ ...files(), certFile: notPem }, /^--cert .*not-pem\.txt is not a PEM certificate/],
      [{ ...files(), keyFile: pki.client.certFile }, /^--key .* is not an unencrypted PEM private key/],
      [{ ...files(), keyFile: join(root, 'missing.key') }, /^--key .*missing\.key cannot be read \(ENOENT\)/],
      // The agent's server certificate is for serverAuth only: agents would refuse it.
      [
        { ...files(), certFile: pki.server.certFile, keyFile: pki.server.keyFile },
        /^--cert .*agent\.pem is not for client authentication/,
      ],
    ];
    for (const [given, message] of cases) {
      const err = failure(() => installAgentTls(dir, given));
      expect(err.code).toBe('KEY_FILE_INVALID');
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain('PRIVATE KEY');
    }
    for (const name of Object.values(AGENT_TLS_FILES)) expect(existsSync(join(dir, name))).toBe(false);

    const nowhere = join(root, 'no-console');
    expect(failure(() => installAgentTls(nowhere, files())).code).toBe('CONSOLE_NOT_INITIALISED');
  });

  it('a partial or altered set in the data dir is an error at load, not a silent fallback to no TLS', () => {
    const dir = consoleDir();
    installAgentTls(dir, files());
    rmSync(join(dir, AGENT_TLS_FILES.key));
    expect(failure(() => loadAgentTls(dir)).message).toMatch(
      /holds agent-ca\.pem, agent-client\.pem but not agent-client\.key: install the three again/,
    );
    writeFileSync(join(dir, AGENT_TLS_FILES.key), pki.client2.key);
    expect(failure(() => loadAgentTls(dir)).message).toMatch(/agent-client\.key is not the key of .*agent-client\.pem/);
  });
});

describe('AgentClient over mutual TLS', () => {
  let tls: AgentTls;
  const agents: FastifyInstance[] = [];
  beforeAll(() => {
    const dir = consoleDir();
    installAgentTls(dir, files());
    tls = loadAgentTls(dir)!;
  });
  afterAll(async () => {
    for (const app of agents) await app.close();
  });

  let m = 0;
  async function startAgent(adminToken?: string): Promise<{ address: string; stateDir: string }> {
    const stateDir = join(root, `agent-${++m}`);
    Licence.init({ stateDir, product, hardwareId: `hw-console-tls-${m}`, clock });
    const app = createAgentServer({
      stateDir,
      ...(adminToken === undefined ? {} : { adminToken }),
      tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert },
      clock,
    });
    agents.push(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { address: `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, stateDir };
  }

  it('mTLS only: the console with its client certificate probes, reads the status, installs a key, sets the host', async () => {
    const { address, stateDir } = await startAgent();
    // The token is sent but not checked: this agent has none.
    const agent = new AgentClient(address, TOKEN, { tls });
    await agent.probe();
    expect(await agent.status()).toMatchObject({ group: 'office14', agent: { version: 1 } });
    expect((await agent.installKey(product.gvlk)).installedKeyType).toBe('gvlk');
    expect((await agent.setKmsHost('kms.corp.example')).host).toBe('kms.corp.example:1688');
    expect(Licence.open({ stateDir }).status().host).toBe('kms.corp.example:1688');
  });

  it('no client certificate, or one of another CA: AGENT_UNREACHABLE naming the likely cause', async () => {
    const { address } = await startAgent();
    const withoutTls = await failureOf(new AgentClient(address, TOKEN).status());
    expect(withoutTls.code).toBe('AGENT_UNREACHABLE');
    // Without the console's CA the agent's own certificate is not trusted: that is said first.
    expect(withoutTls.message).toMatch(/TLS certificate is not trusted: install the CA .* `volact console agent-tls`/);

    const rogue = await failureOf(
      new AgentClient(address, TOKEN, { tls: { ...tls, cert: pki.rogue.cert, key: pki.rogue.key } }).status(),
    );
    expect(rogue.code).toBe('AGENT_UNREACHABLE');
    expect(rogue.message).toMatch(
      new RegExp(`agent ${address}: .*the agent refused this console's client certificate .*--client-ca`),
    );

    const otherCa = await failureOf(
      new AgentClient(address, TOKEN, { tls: { ...tls, ca: pki.otherCa.cert } }).status(),
    );
    expect(otherCa.code).toBe('AGENT_UNREACHABLE');
    expect(otherCa.message).toMatch(/TLS certificate does not verify: is it signed by the CA installed/);
  });

  it('token and mTLS: the right certificate with a wrong token is UNAUTHORIZED; the probe checks the token proof (PROOF_FAILED)', async () => {
    const { address } = await startAgent(TOKEN);
    const agent = new AgentClient(address, TOKEN, { tls });
    await agent.probe();
    expect((await agent.status()).group).toBe('office14');
    const wrong = new AgentClient(address, `${TOKEN}-other`, { tls });
    expect((await failureOf(wrong.probe())).resultCode).toBe('PROOF_FAILED');
    expect((await failureOf(wrong.status())).code).toBe('UNAUTHORIZED');
  });

  it('a probe answer without a proof is accepted only when it names this console certificate', async () => {
    // Something at the address that verified no client certificate and claims another one.
    const fake = https.createServer({ cert: pki.server.cert, key: pki.server.key }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          agent: { version: 1 },
          enrolled: false,
          proof: null,
          clientCertificate: { subject: 'x', fingerprint: 'AA' },
        }),
      );
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const address = `https://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      const err = await failureOf(new AgentClient(address, TOKEN, { tls }).probe());
      expect(err).toMatchObject({ code: 'AGENT_REFUSED', resultCode: 'UNAUTHORIZED' });
      expect(err.message).toMatch(/did not verify this console's client certificate/);
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it('a plain-HTTP agent (HOST:PORT) is still called with the token alone', async () => {
    const stateDir = join(root, 'agent-plain');
    Licence.init({ stateDir, product, hardwareId: 'hw-console-plain', clock });
    const app = createAgentServer({ stateDir, adminToken: TOKEN, clock });
    agents.push(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const agent = new AgentClient(`127.0.0.1:${(app.server.address() as AddressInfo).port}`, TOKEN, { tls });
    await agent.probe();
    expect((await agent.status()).group).toBe('office14');
  });
});
