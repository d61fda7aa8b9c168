import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Authority } from '@volact/authority';
import { Licence } from '@volact/client';
import { createAgentServer } from '@volact/client/agent';
import { ManualClock } from '@volact/core';
import { runCliInProcess } from './cli-in-process.js';

/** `volact console set-kms-host-caching`, in this process, against two real agents. */
const TOKEN = 'cli-caching-agent-token-0123456789';

let root: string;
let dataDir: string;
const clock = new ManualClock(Date.UTC(2026, 10, 25, 9));
const agents: { stateDir: string; address: string; app: FastifyInstance }[] = [];

/** Runs `volact …` in this process (the real command tree). */
const cli = (...args: string[]) => runCliInProcess(args);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'volact-cli-caching-'));
  const authority = Authority.init(join(root, 'authority'), { clock });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  const product = await authority.productConfig('office14');
  await authority.close();
  for (const n of [1, 2]) {
    const stateDir = join(root, `machine-${n}`);
    Licence.init({ stateDir, product, hardwareId: `hw-${n}`, clock });
    const app = createAgentServer({ stateDir, adminToken: TOKEN, clock });
    await app.listen({ host: '127.0.0.1', port: 0 });
    agents.push({ stateDir, app, address: `127.0.0.1:${(app.server.address() as AddressInfo).port}` });
  }
  dataDir = join(root, 'console');
  const tokenFile = join(root, 'agent.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  expect((await cli('console', 'init', '--data-dir', dataDir)).code).toBe(0);
  for (const [i, a] of agents.entries()) {
    const added = await cli(
      'console',
      'machine',
      'add',
      a.address,
      '--name',
      `pc-${i + 1}`,
      '--data-dir',
      dataDir,
      '--token-file',
      tokenFile,
    );
    expect(added.code, added.stdout + added.stderr).toBe(0);
  }
});
afterAll(async () => {
  for (const a of agents) await a.app.close();
  rmSync(root, { recursive: true, force: true });
});

const caching = () => agents.map((a) => Licence.open({ stateDir: a.stateDir, clock }).status().discovery.caching);

describe('volact console set-kms-host-caching', () => {
  it('--all off, --json: one result per machine, the agents changed; --machine ID… on (the value after the ids)', async () => {
    const off = await cli('console', 'set-kms-host-caching', '--data-dir', dataDir, '--all', 'off', '--json');
    expect(off.code, off.stderr).toBe(0);
    const { results } = JSON.parse(off.stdout) as { results: { machine: string; ok: boolean; message: string }[] };
    expect(results.map((r) => [r.machine, r.ok, r.message])).toEqual([
      ['pc-1', true, 'KMS host caching off'],
      ['pc-2', true, 'KMS host caching off'],
    ]);
    // One progress line per machine on stderr, as the other many-machine commands.
    expect(off.stderr).toMatch(/^\[1\/2\] pc-\d: ok/m);
    expect(caching()).toEqual([false, false]);

    // `--machine 2 on`: the variadic option takes the value too; it is peeled off (as set-kms-host's host).
    const on = await cli('console', 'set-kms-host-caching', '--data-dir', dataDir, '--machine', '2', 'on');
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toMatch(/^pc-2\tok\t\S+\tKMS host caching on$/m);
    expect(caching()).toEqual([false, true]);

    // Machines named as arguments, then the value.
    expect((await cli('console', 'set-kms-host-caching', '--data-dir', dataDir, 'pc-1', 'on')).code).toBe(0);
    expect(caching()).toEqual([true, true]);

    const log = await cli('console', 'log', '--data-dir', dataDir, '--json');
    const rows = (JSON.parse(log.stdout) as { operations: { operation: string; detail: string }[] }).operations;
    expect(rows.filter((o) => o.operation === 'set-kms-host-caching').map((o) => o.detail)).toHaveLength(4);
  });

  it('refuses a value other than on or off, a missing one, and no machines, changing nothing (OPTION_INVALID)', async () => {
    for (const args of [['--all', 'maybe'], ['--all'], ['--machine', '1'], ['off'], ['--all', 'pc-1', 'off']]) {
      const r = await cli('console', 'set-kms-host-caching', '--data-dir', dataDir, ...args, '--json');
      expect(r.code, args.join(' ')).toBe(1);
      expect(JSON.parse(r.stderr || r.stdout).error.code, args.join(' ')).toBe('OPTION_INVALID');
    }
    expect(caching()).toEqual([true, true]);
  });
});
