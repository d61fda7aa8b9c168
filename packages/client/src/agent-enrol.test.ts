import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Authority } from '@volact/authority';
import { ManualClock, agentProbeProofAt, sha256, type ProductConfig } from '@volact/core';
import { Licence } from './index.js';
import { AGENT_SETTINGS_FILE, createAgentServer, readAgentEnrolment, recordAgentSettings } from './agent-entry.js';

/** Enrolment, per-machine tokens and the authority list of the agent, over real sockets. */
const FLEET = 'fleet-enrolment-token-0123456789';
const MACHINE = 'machine-token-of-this-one-0123456789';
const ROTATED = 'machine-token-rotated-0123456789ab';
const NONCE = '00112233445566778899aabbccddeeff';

let root: string;
let product: ProductConfig;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-agent-enrol-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  product = await authority.productConfig('office14');
  await authority.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Answer {
  readonly status: number;
  readonly body: ReturnType<typeof JSON.parse>;
}

function call(
  port: number,
  method: string,
  path: string,
  token?: string,
  body?: object,
  host = '127.0.0.1',
): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        method,
        path,
        agent: false,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

let n = 0;
async function startAgent(options: { token?: string; stateDir?: string; authorities?: string[] } = {}) {
  const stateDir = options.stateDir ?? join(root, `agent-${++n}`);
  if (options.stateDir === undefined) Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
  const lines: string[] = [];
  const app: FastifyInstance = createAgentServer({
    stateDir,
    adminToken: options.token ?? FLEET,
    ...(options.authorities ? { authorities: options.authorities } : {}),
    logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
    clock,
    timeoutMs: 500,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, stateDir, log: () => lines.join('') };
}

const proofFor = (token: string, address: string, port: number) =>
  agentProbeProofAt(sha256(Buffer.from(token)), NONCE, address, port);

describe('agent enrolment: the enrolment token once, then a per-machine token', () => {
  it('the probe proves the token for the address and port the connection reached, nothing else', async () => {
    const agent = await startAgent();
    try {
      const probe = await call(agent.port, 'GET', `/v1/probe?nonce=${NONCE}`);
      expect(probe.status).toBe(200);
      expect(probe.body).toEqual({
        agent: { version: 1 },
        enrolled: false,
        proof: proofFor(FLEET, '127.0.0.1', agent.port),
      });
      // What a relay at another address or port would have to show: it differs.
      expect(probe.body.proof).not.toBe(proofFor(FLEET, '127.0.0.2', agent.port));
      expect(probe.body.proof).not.toBe(proofFor(FLEET, '127.0.0.1', agent.port + 1));
    } finally {
      await agent.app.close();
    }
  });

  it('enrol: afterwards only the machine token opens the agent (hashed in agent.json); the fleet token is 401', async () => {
    const agent = await startAgent();
    try {
      expect((await call(agent.port, 'GET', '/v1/status', FLEET)).status).toBe(200);
      const enrolled = await call(agent.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE });
      expect(enrolled.status).toBe(200);
      expect(enrolled.body).toMatchObject({ enrolled: true });
      const settings = readFileSync(join(agent.stateDir, AGENT_SETTINGS_FILE), 'utf8');
      expect(settings).not.toContain(MACHINE);
      expect(settings).not.toContain(FLEET);
      expect(readAgentEnrolment(agent.stateDir, sha256(Buffer.from(FLEET)).toString('hex'))).toMatchObject({
        machineTokenSha256: sha256(Buffer.from(MACHINE)).toString('hex'),
        enrolmentTokenSha256: sha256(Buffer.from(FLEET)).toString('hex'),
      });

      for (const [method, path, body] of [
        ['GET', '/v1/status', undefined],
        ['PUT', '/v1/kms-host', { address: 'rogue.example:1688' }],
        ['POST', '/v1/activate', {}],
        ['POST', '/v1/enrol', { token: 'another-token-of-the-attacker-01' }],
      ] as const) {
        const refused = await call(agent.port, method, path, FLEET, body);
        expect(refused.status, `${method} ${path}`).toBe(401);
        expect(refused.body.error.code).toBe('UNAUTHORIZED');
      }
      expect(Licence.open({ stateDir: agent.stateDir, clock }).status().host).toBeNull();
      expect((await call(agent.port, 'GET', '/v1/status', MACHINE)).status).toBe(200);
      // The probe now proves the machine token, and says so.
      const probe = await call(agent.port, 'GET', `/v1/probe?nonce=${NONCE}`);
      expect(probe.body).toMatchObject({ enrolled: true, proof: proofFor(MACHINE, '127.0.0.1', agent.port) });
      // Enrolling twice is refused by name, even with the machine token.
      const again = await call(agent.port, 'POST', '/v1/enrol', MACHINE, { token: ROTATED });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('ALREADY_ENROLLED');
      expect(agent.log()).not.toContain(MACHINE);
    } finally {
      await agent.app.close();
    }
  });

  it('rotation: the new token works at once, the old one is 401; without enrolment it is NOT_ENROLLED', async () => {
    const agent = await startAgent();
    try {
      const early = await call(agent.port, 'POST', '/v1/token', FLEET, { token: ROTATED });
      expect(early.status).toBe(409);
      expect(early.body.error.code).toBe('NOT_ENROLLED');
      expect((await call(agent.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE })).status).toBe(200);
      const same = await call(agent.port, 'POST', '/v1/token', MACHINE, { token: FLEET });
      expect(same.status).toBe(400);
      const rotated = await call(agent.port, 'POST', '/v1/token', MACHINE, { token: ROTATED });
      expect(rotated.status).toBe(200);
      expect((await call(agent.port, 'GET', '/v1/status', MACHINE)).status).toBe(401);
      expect((await call(agent.port, 'GET', '/v1/status', ROTATED)).status).toBe(200);
    } finally {
      await agent.app.close();
    }
  });

  it('restarted with another enrolment token (the local admin resets it): enrolment opens again, the old machine token is dead', async () => {
    const first = await startAgent();
    await call(first.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE });
    await first.app.close();
    const second = await startAgent({ stateDir: first.stateDir, token: 'a-new-fleet-token-for-re-enrolment' });
    try {
      expect((await call(second.port, 'GET', '/v1/status', MACHINE)).status).toBe(401);
      const probe = await call(second.port, 'GET', `/v1/probe?nonce=${NONCE}`);
      expect(probe.body.enrolled).toBe(false);
      expect(
        (await call(second.port, 'POST', '/v1/enrol', 'a-new-fleet-token-for-re-enrolment', { token: ROTATED })).status,
      ).toBe(200);
      expect((await call(second.port, 'GET', '/v1/status', ROTATED)).status).toBe(200);
    } finally {
      await second.app.close();
    }
  });

  it('restarting the agent over a damaged agent.json refuses to start (AGENT_SETTINGS_INVALID): the file and its enrolments stay, the fleet token stays out', async () => {
    const agent = await startAgent();
    const path = join(agent.stateDir, AGENT_SETTINGS_FILE);
    try {
      await call(agent.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE });
      const damaged = readFileSync(path, 'utf8').slice(0, -20);
      writeFileSync(path, damaged);
      // What `volact client agent` runs at every start, before it serves.
      let thrown: unknown;
      try {
        recordAgentSettings(agent.stateDir, { userOperations: false });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toMatchObject({ code: 'AGENT_SETTINGS_INVALID', message: expect.stringContaining(path) });
      expect((thrown as Error).message).toContain('volact console machine enrol');
      expect(readFileSync(path, 'utf8')).toBe(damaged);
      const refused = await call(agent.port, 'GET', '/v1/status', FLEET);
      expect(refused.body.error.code).toBe('AGENT_SETTINGS_INVALID');
    } finally {
      await agent.app.close();
    }
  });

  it('agent.json is written owner-only, also over a temporary file left behind with a looser mode', async () => {
    const agent = await startAgent();
    const path = join(agent.stateDir, AGENT_SETTINGS_FILE);
    try {
      writeFileSync(`${path}.tmp`, 'left over', { mode: 0o644 });
      recordAgentSettings(agent.stateDir, { userOperations: true });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      writeFileSync(`${path}.tmp`, 'left over', { mode: 0o644 });
      await call(agent.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(readAgentEnrolment(agent.stateDir, sha256(Buffer.from(FLEET)).toString('hex'))).not.toBeNull();
    } finally {
      await agent.app.close();
    }
  });

  it('a damaged agent.json refuses every token call (it may have held the enrolment): AGENT_SETTINGS_INVALID', async () => {
    const agent = await startAgent();
    try {
      await call(agent.port, 'POST', '/v1/enrol', FLEET, { token: MACHINE });
      writeFileSync(join(agent.stateDir, AGENT_SETTINGS_FILE), '{"format":"volact-agent/1","userOpera');
      for (const token of [FLEET, MACHINE]) {
        const refused = await call(agent.port, 'GET', '/v1/status', token);
        expect(refused.status).toBe(500);
        expect(refused.body.error.code).toBe('AGENT_SETTINGS_INVALID');
      }
    } finally {
      await agent.app.close();
    }
  });
});

describe('agent authorities: only its own', () => {
  it('POST /v1/activate with an authority URL not in its list is 403 AUTHORITY_NOT_ALLOWED; nothing is sent or changed', async () => {
    const agent = await startAgent({ authorities: ['https://activation.example.com/'] });
    try {
      for (const authority of [
        'https://fake-authority.example/',
        'http://127.0.0.1:9/steal?x=1',
        'https://activation.example.com.evil.example/',
        'not a url',
      ]) {
        const refused = await call(agent.port, 'POST', '/v1/activate', FLEET, { authority });
        expect(refused.status, authority).toBe(403);
        expect(refused.body.error).toMatchObject({ code: 'AUTHORITY_NOT_ALLOWED' });
        expect(refused.body.error.message).not.toContain('steal');
      }
      expect(Licence.open({ stateDir: agent.stateDir, clock }).status().lastAttempt).toBeNull();
      // Its own one is taken (the attempt itself, a KMS one with no host here, fails as data).
      const own = await call(agent.port, 'POST', '/v1/activate', FLEET, {
        authority: 'https://activation.example.com',
      });
      expect(own.status).toBe(200);
    } finally {
      await agent.app.close();
    }
  });

  it("the product config's own authority is allowed with no --authority list; any other is not", async () => {
    const stateDir = join(root, 'agent-product-url');
    const withUrl = { ...product, authority: { ...product.authority, url: 'https://publisher.example/activation/' } };
    Licence.init({ stateDir, product: withUrl, hardwareId: 'hw-product-url', clock });
    const agent = await startAgent({ stateDir });
    try {
      const own = await call(agent.port, 'POST', '/v1/activate', FLEET, {
        authority: 'https://publisher.example/activation',
      });
      expect(own.status).toBe(200);
      const other = await call(agent.port, 'POST', '/v1/activate', FLEET, { authority: 'https://publisher.example/' });
      expect(other.status).toBe(403);
      expect(other.body.error).toMatchObject({ code: 'AUTHORITY_NOT_ALLOWED' });
    } finally {
      await agent.app.close();
    }
  });
});
