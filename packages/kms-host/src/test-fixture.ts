/**
 * Test support for the KMS host's tests (only through `@volact/kms-host/testing`): a real authority in a
 * temporary directory, serving its HTTP API on 127.0.0.1, a KMS host key minted by it, a host
 * data directory with that key installed and activated online, and a small TCP client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Authority, createAuthorityServer } from '@volact/authority';
import {
  FrameReader,
  MAX_RESPONSE_SIZE,
  ManualClock,
  encodeActivationRequest,
  frame,
  guidToBytes,
  type ActivationRequest,
  type ProductGroup,
} from '@volact/core';
import { HostState } from './host-state.js';
import { activateHostOnline } from './activation.js';

export interface HostFixture {
  readonly clock: ManualClock;
  readonly tempDir: string;
  readonly authority: Authority;
  readonly authorityUrl: string;
  /** The group the host key serves (office14, threshold 5). */
  readonly group: ProductGroup;
  /** A group the authority knows but the host key does not name. */
  readonly otherGroup: ProductGroup;
  readonly hostKey: string;
  readonly hostDir: string;
  readonly state: HostState;
  /** Stops the authority's server, closes its store and removes the temporary directory. */
  cleanup(): Promise<void>;
}

export async function createActivatedHost(clock = new ManualClock()): Promise<HostFixture> {
  const tempDir = mkdtempSync(join(tmpdir(), 'volact-kms-host-'));
  let app: FastifyInstance | undefined;
  let authority: Authority | undefined;
  const cleanup = async () => {
    await app?.close();
    await authority?.close();
    rmSync(tempDir, { recursive: true, force: true });
  };
  try {
    authority = Authority.init(join(tempDir, 'authority'), { clock });
    const group = await authority.addGroup({ name: 'office14', threshold: 5 });
    const otherGroup = await authority.addGroup({ name: 'windows-server', kind: 'server' });
    const minted = await authority.mintKey({ type: 'kms-host', groups: ['office14'] });
    app = createAuthorityServer(authority);
    const authorityUrl = await app.listen({ host: '127.0.0.1', port: 0 });
    const hostDir = join(tempDir, 'host');
    const state = HostState.installKey(hostDir, minted.key, 'hw-1', clock.now());
    await activateHostOnline(state, authorityUrl, { clock });
    return {
      clock,
      tempDir,
      authority,
      authorityUrl,
      group,
      otherGroup,
      hostKey: minted.key,
      hostDir,
      state: HostState.open(hostDir),
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A request payload for `groupId` with random client id and nonce unless given. */
export function requestPayload(groupId: string, fields: Partial<ActivationRequest> = {}): Buffer {
  return encodeActivationRequest({
    licenceState: 0,
    groupId: guidToBytes(groupId),
    clientId: randomBytes(16),
    nonce: randomBytes(16),
    clientTime: Date.UTC(2026, 0, 1),
    ...fields,
  });
}

/**
 * Opens a TCP connection, writes `data` (or each chunk of it, one write each), reads until
 * `expectFrames` response payloads have arrived or the host closes (or resets) the connection,
 * then closes. Returns the payloads in arrival order.
 */
export function exchange(
  address: { host: string; port: number },
  data: Buffer | readonly Buffer[],
  expectFrames: number,
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(address.port, address.host);
    const reader = new FrameReader(MAX_RESPONSE_SIZE);
    const payloads: Buffer[] = [];
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(payloads);
    };
    socket.on('connect', () => {
      for (const chunk of Buffer.isBuffer(data) ? [data] : data) socket.write(chunk);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        payloads.push(...reader.push(chunk));
      } catch (err) {
        finish(err as Error);
        return;
      }
      if (payloads.length >= expectFrames) finish();
    });
    // The host closing while we still write shows up as a reset: the connection is over.
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : err),
    );
    socket.on('close', () => finish());
  });
}

/** Sends one framed request and returns the one response payload. */
export async function ask(address: { host: string; port: number }, payload: Buffer): Promise<Buffer> {
  const [response] = await exchange(address, frame(payload), 1);
  if (!response) throw new Error('the host closed the connection without answering');
  return response;
}

/** Sends `payloads` on one connection from `localAddress` (any 127.x.y.z); returns the answers in order. */
export function askAllFrom(localAddress: string, port: number, payloads: readonly Buffer[]): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    const reader = new FrameReader(MAX_RESPONSE_SIZE);
    const got: Buffer[] = [];
    socket.on('connect', () => socket.write(Buffer.concat(payloads.map((p) => frame(p)))));
    socket.on('data', (chunk: Buffer) => {
      got.push(...reader.push(chunk));
      if (got.length === payloads.length) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${got.length} of ${payloads.length} answers`)));
  });
}
