import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isPublicAddress, organisationTargetProblem, postWebhook } from './targets.js';

describe("an organisation's webhook targets (no SSRF into the publisher's network)", () => {
  it('tells public addresses from private, loopback, link-local, reserved and embedded ones', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '[2a00:1450:4007::65]']) {
      expect(isPublicAddress(address), address).toBe(true);
    }
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '224.0.0.1',
      '::1',
      '::',
      'fd00::1',
      'fe80::1%eth0',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '64:ff9b::a00:1',
      '::ffff:0:7f00:1',
      '64:ff9b:1::a9fe:a9fe',
      '2002:a9fe:a9fe::1',
      '2001:0:4136:e378:8000:63bf:80ff:fffe',
      'fec0::1',
      '100::1',
      'not an address',
    ]) {
      expect(isPublicAddress(address), address).toBe(false);
    }
  });

  it('refuses http, local names and non-public literal addresses when an endpoint is added', () => {
    expect(organisationTargetProblem(new URL('https://hooks.example.com/x'))).toBeNull();
    expect(organisationTargetProblem(new URL('https://8.8.8.8/x'))).toBeNull();
    expect(organisationTargetProblem(new URL('http://hooks.example.com/x'))).toMatch(/must use https/);
    expect(organisationTargetProblem(new URL('https://[::1]/x'))).toMatch(/::1 is private/);
    expect(organisationTargetProblem(new URL('https://db.localhost/x'))).toMatch(/not "db.localhost"/);
    expect(organisationTargetProblem(new URL('https://localhost./x'))).toMatch(/not "localhost"/);
    expect(organisationTargetProblem(new URL('https://2130706433/x'))).toMatch(/127\.0\.0\.1 is private/); // URL normalises
  });

  it('at delivery, a name that resolves to this machine is refused before any byte is sent', async () => {
    let requests = 0;
    const receiver = createServer((_req, res) => {
      requests++;
      res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as AddressInfo).port;
    try {
      // `localhost` stands for a public-looking name whose DNS answer moved inside (rebinding).
      await expect(
        postWebhook(`http://localhost:${port}/h`, {}, '{}', { timeoutMs: 2000, publicOnly: true }),
      ).rejects.toMatchObject({ code: 'WEBHOOK_TARGET_NOT_PUBLIC' });
      await expect(
        postWebhook(`http://127.0.0.1:${port}/h`, {}, '{}', { timeoutMs: 2000, publicOnly: true }),
      ).rejects.toMatchObject({ code: 'WEBHOOK_TARGET_NOT_PUBLIC' });
      expect(requests).toBe(0);
      // The publisher's own endpoints are not limited.
      expect(await postWebhook(`http://localhost:${port}/h`, {}, '{}', { timeoutMs: 2000, publicOnly: false })).toBe(
        200,
      );
      expect(requests).toBe(1);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});
