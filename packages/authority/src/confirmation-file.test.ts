import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ManualClock,
  encodeProxyFile,
  makeInstallationId,
  parseCidFile,
  parseConfirmationId,
  parseKey,
  signIidFile,
  signingKeyPairFromSeed,
} from '@volact/core';
import { Authority } from './authority.js';
import { createAuthorityServer } from './http.js';

/** The publisher portal's upload of a console's installation-ID file (POST /v1/operator/confirmation-files). */
const ADMIN = 'admin-token-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'volact-confirmation-file-'));
const clock = new ManualClock(Date.UTC(2026, 11, 3, 9));
let authority: Authority;
let app: FastifyInstance;
let file: string;
let mak: string;

beforeAll(async () => {
  authority = Authority.init(join(dir, 'a'), { clock, passwordCost: 10 });
  await authority.addGroup({ name: 'office14', threshold: 5 });
  app = createAuthorityServer(authority, { adminToken: ADMIN, clock, webRoot: null });
  mak = (await authority.mintKey({ type: 'mak', groups: ['office14'], limit: 2 })).key;
  const groupIds = [(await authority.group('office14')).id];
  const iid = (hardwareId: string) =>
    makeInstallationId({ kind: 'installation', key: parseKey(mak), hardwareId, groupIds }).text;
  const entries = ['pc-1', 'pc-2', 'pc-3'].map((name, i) => ({
    machine: name,
    machineId: i + 1,
    installationId: iid(`hw-${name}`),
    installedKey: '…ABCDE',
  }));
  const key = signingKeyPairFromSeed(Buffer.alloc(32, 3));
  file = encodeProxyFile(signIidFile({ id: 'collected-0001', createdAt: '2026-12-03T08:00:00.000Z', entries }, key));
});
afterAll(async () => {
  await app.close();
  await authority.close();
  rmSync(dir, { recursive: true, force: true });
});

const upload = (payload: unknown, token: string | null = ADMIN) =>
  app.inject({
    method: 'POST',
    url: '/v1/operator/confirmation-files',
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    payload: payload as object,
  });

describe('POST /v1/operator/confirmation-files', () => {
  it('answers the confirmation file: each IID confirmed as by the operator, the limit counted', async () => {
    const res = await upload({ file });
    expect(res.statusCode, res.body).toBe(200);
    const answer = res.json<{ file: string; confirmed: number; refused: number }>();
    expect(answer).toMatchObject({ confirmed: 2, refused: 1, request: { id: 'collected-0001' } });
    const cids = parseCidFile(answer.file);
    expect(cids.results.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'ok', 'MAK_LIMIT_REACHED']);
    const first = cids.results[0];
    if (!first?.ok) throw new Error('not confirmed');
    expect(() => parseConfirmationId(first.confirmationId)).not.toThrow();
    expect((await authority.showKey(mak)).used).toBe(2);
  });

  it('an edited file confirms nothing (PROXY_FILE_TAMPERED); a malformed one names its field; no token: 401', async () => {
    const before = (await authority.showKey(mak)).used;
    const edited = JSON.parse(file) as { entries: { machine: string }[] };
    (edited.entries[0] as { machine: string }).machine = 'renamed';
    const tampered = await upload({ file: JSON.stringify(edited) });
    expect(tampered.statusCode).toBe(400);
    expect(tampered.json()).toMatchObject({ error: { code: 'PROXY_FILE_TAMPERED' } });
    const invalid = await upload({ file: JSON.stringify({ ...JSON.parse(file), extra: 1 }) });
    expect(invalid.json()).toMatchObject({
      error: { code: 'PROXY_FILE_INVALID', message: expect.stringMatching(/^extra: /) },
    });
    expect((await upload({ file }, null)).statusCode).toBe(401);
    // Pinned to another console's key: the file (validly signed by its own) confirms nothing.
    const pinned = await upload({ file, consoleKeyId: 'ab'.repeat(8) });
    expect([pinned.statusCode, pinned.json().error?.code]).toEqual([400, 'PROXY_FILE_FOREIGN']);
    expect((await authority.showKey(mak)).used).toBe(before);
  });
});
