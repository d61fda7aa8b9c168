import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '@volact/core';
import { AGENT_TLS_FILES, AgentClient, loadAgentTls, type AgentTls } from '@volact/console';
import { makeTestPki, type TestPki } from '@volact/client/testing';
import { startSlice, type Slice } from './harness.js';

/**
 * Mutual TLS between the console and an agent, end to end: the built `volact` binary serves
 * the agent (`client agent --tls-cert --tls-key --client-ca`), the console's TLS is installed
 * by `console agent-tls`, and the console manages the machine with it (its AgentClient: status,
 * key, KMS host, activation against a real KMS host; its binary: machine add, refresh).
 * Certificates are made by openssl per run.
 */
const BIN = fileURLToPath(new URL('../../bin/volact.js', import.meta.url));
const TOKEN = 'mtls-e2e-agent-token-0123456789';

let slice: Slice;
let pki: TestPki;
let consoleDir: string;
let tls: AgentTls;
const daemons: ChildProcess[] = [];

function volact(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `volact client agent …`; resolves with its https:// address and a view of its log. */
function startAgent(stateDir: string, ...flags: string[]): Promise<{ address: string; log: () => string }> {
  const child = spawn(
    process.execPath,
    [BIN, 'client', 'agent', '--state-dir', stateDir, '--listen', '127.0.0.1:0', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  daemons.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /client agent listening on (https:\/\/127\.0\.0\.1:\d+)\nconsoles authenticate with .*\n/.exec(err);
      if (m) resolve({ address: m[1] as string, log: () => out });
    });
    child.on('exit', (code) => reject(new Error(`volact client agent exited ${code}: ${err}`)));
  });
}

/** Polls a condition (bounded): the agent's log is flushed every 500 ms. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const failureOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code: string };
  }
  throw new Error('no failure');
};

beforeAll(async () => {
  // The agent binary runs on the system clock: the host's must agree with it.
  slice = await startSlice(new ManualClock(Date.now()), { threshold: 1 });
  pki = makeTestPki();
  writeFileSync(join(slice.root, 'product.json'), JSON.stringify(slice.product));
  writeFileSync(join(slice.root, 'agent.token'), `${TOKEN}\n`, { mode: 0o600 });
  consoleDir = join(slice.root, 'console');
  expect(volact('console', 'init', '--data-dir', consoleDir).code).toBe(0);
});

afterAll(async () => {
  for (const d of daemons) d.kill('SIGTERM');
  await slice.close();
  pki.remove();
});

describe('volact console agent-tls', () => {
  it('refuses a key of another certificate, naming both files; nothing installed', async () => {
    const r = volact(
      'console',
      'agent-tls',
      '--data-dir',
      consoleDir,
      '--ca',
      pki.ca.certFile,
      '--cert',
      pki.client.certFile,
      '--key',
      pki.client2.keyFile,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error KEY_FILE_INVALID: --key .*second-console\.key is not the key of --cert .*volact-console\.pem/,
    );
    expect(loadAgentTls(consoleDir)).toBeUndefined();
  });

  it('installs the CA, the client certificate and its key (0600), printing the fingerprint agents log', async () => {
    const r = volact(
      'console',
      'agent-tls',
      '--data-dir',
      consoleDir,
      '--ca',
      pki.ca.certFile,
      '--cert',
      pki.client.certFile,
      '--key',
      pki.client.keyFile,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ subject: 'CN=volact-console', expired: false, caCertificates: 1 });
    expect(r.stdout).not.toContain('PRIVATE KEY');
    for (const name of Object.values(AGENT_TLS_FILES))
      expect(statSync(join(consoleDir, name)).mode & 0o777).toBe(0o600);
    tls = loadAgentTls(consoleDir)!;
    expect(tls.cert).toBe(pki.client.cert);
  });
});

describe('the console manages an agent that serves mutual TLS (the built CLI)', () => {
  it('mTLS only: probe, status, GVLK, KMS host and activation; others are dropped at the TLS layer and logged', async () => {
    const stateDir = join(slice.root, 'clients', 'pc-mtls');
    expect(
      volact(
        'client',
        'init',
        '--state-dir',
        stateDir,
        '--product',
        join(slice.root, 'product.json'),
        '--hardware-id',
        'hw-mtls',
      ).code,
    ).toBe(0);
    const agentRun = await startAgent(
      stateDir,
      '--tls-cert',
      pki.server.certFile,
      '--tls-key',
      pki.server.keyFile,
      '--client-ca',
      pki.ca.certFile,
    );
    // The console's stored token is sent but not checked by an agent without one.
    const agent = new AgentClient(agentRun.address, TOKEN, { tls });
    await agent.probe();
    expect(await agent.status()).toMatchObject({ group: 'office14', agent: { version: 1 } });
    expect((await agent.installKey(slice.product.gvlk)).installedKeyType).toBe('gvlk');
    expect((await agent.setKmsHost(slice.hostAddress())).host).toBe(slice.hostAddress());
    const outcome = await agent.activate();
    expect(outcome, outcome.message).toMatchObject({ ok: true, status: { state: 'licensed', method: 'kms' } });

    const plain = await failureOf(new AgentClient(agentRun.address, TOKEN).status());
    expect(plain).toMatchObject({ code: 'AGENT_UNREACHABLE' });
    expect(plain.message).toMatch(/`volact console agent-tls`/);
    const rogue = await failureOf(
      new AgentClient(agentRun.address, TOKEN, { tls: { ...tls, cert: pki.rogue.cert, key: pki.rogue.key } }).status(),
    );
    expect(rogue).toMatchObject({ code: 'AGENT_UNREACHABLE' });
    expect(rogue.message).toMatch(/refused this console's client certificate/);

    await until(() => agentRun.log().includes('rogue-console'));
    const log = agentRun.log();
    const lines = log
      .trim()
      .split('\n')
      .map(
        (l) => JSON.parse(l) as { msg: string; method?: string; path?: string; client?: { subject: string } | null },
      );
    const calls = lines.filter((l) => l.msg === 'management call');
    expect(calls.map((l) => `${l.method} ${l.path}`)).toEqual([
      'GET /v1/probe',
      'GET /v1/status',
      'POST /v1/key',
      'PUT /v1/kms-host',
      'POST /v1/activate',
    ]);
    expect(calls[0]!.client).toEqual({
      subject: 'volact-console',
      fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
    });
    expect(lines.find((l) => l.msg === 'TLS client refused' && l.client?.subject === 'rogue-console')).toMatchObject({
      level: 40,
      from: '127.0.0.1',
    });
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('PRIVATE KEY');
  });

  it('token and mTLS: both are needed', async () => {
    const stateDir = join(slice.root, 'clients', 'pc-both');
    expect(
      volact(
        'client',
        'init',
        '--state-dir',
        stateDir,
        '--product',
        join(slice.root, 'product.json'),
        '--hardware-id',
        'hw-both',
      ).code,
    ).toBe(0);
    const agentRun = await startAgent(
      stateDir,
      '--tls-cert',
      pki.server.certFile,
      '--tls-key',
      pki.server.keyFile,
      '--client-ca',
      pki.ca.certFile,
      '--admin-token-file',
      join(slice.root, 'agent.token'),
    );
    const agent = new AgentClient(agentRun.address, TOKEN, { tls });
    await agent.probe();
    expect((await agent.status()).group).toBe('office14');
    const wrongToken = new AgentClient(agentRun.address, `${TOKEN}-x`, { tls });
    expect(await failureOf(wrongToken.probe())).toMatchObject({ code: 'PROOF_FAILED' });
    expect(await failureOf(wrongToken.status())).toMatchObject({ code: 'UNAUTHORIZED' });
    const rogueCertificate = await failureOf(
      new AgentClient(agentRun.address, TOKEN, { tls: { ...tls, cert: pki.rogue.cert, key: pki.rogue.key } }).status(),
    );
    expect(rogueCertificate).toMatchObject({ code: 'AGENT_UNREACHABLE' });
    await until(() => agentRun.log().includes('"reason":"wrong token"'));
  });

  it('volact console agent-tls, machine add https://… and refresh: the console binary calls the agent over mTLS', async () => {
    const stateDir = join(slice.root, 'clients', 'pc-cli');
    const product = join(slice.root, 'product.json');
    expect(
      volact('client', 'init', '--state-dir', stateDir, '--product', product, '--hardware-id', 'hw-cli').code,
    ).toBe(0);
    const agentRun = await startAgent(
      stateDir,
      '--tls-cert',
      pki.server.certFile,
      '--tls-key',
      pki.server.keyFile,
      '--client-ca',
      pki.ca.certFile,
    );
    const dataDir = join(slice.root, 'console-cli');
    expect(volact('console', 'init', '--data-dir', dataDir).code).toBe(0);
    const installed = volact(
      'console',
      'agent-tls',
      '--data-dir',
      dataDir,
      '--ca',
      pki.ca.certFile,
      '--cert',
      pki.client.certFile,
      '--key',
      pki.client.keyFile,
    );
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain('agent TLS installed');
    expect(installed.stdout).toContain(new X509Certificate(pki.client.cert).fingerprint256);
    const tokenFile = join(slice.root, 'agent.token');
    const added = volact(
      'console',
      'machine',
      'add',
      agentRun.address,
      '--data-dir',
      dataDir,
      '--token-file',
      tokenFile,
      '--name',
      'pc-cli',
    );
    expect(added.code, added.stderr).toBe(0);
    const refreshed = volact('console', 'refresh', 'pc-cli', '--data-dir', dataDir, '--json');
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect(JSON.parse(refreshed.stdout).results).toEqual([
      expect.objectContaining({ machine: 'pc-cli', ok: true, state: 'initial-grace' }),
    ]);
    await until(() => agentRun.log().includes('"path":"/v1/status"'));
    expect(agentRun.log()).toContain('"subject":"volact-console"');
  });
});
