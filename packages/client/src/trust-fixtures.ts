import { createServer, type AddressInfo, type Server } from 'node:net';
import {
  BATCH_CONTEXT,
  FrameReader,
  decodeActivationRequest,
  frame,
  DAY,
  encodeActivationResponse,
  encodeResponseBody,
  encodeResponseExtensions,
  fileSigner,
  gvlkFor,
  guidToBytes,
  leafHash,
  makeHostStatus,
  parseProductConfig,
  signMessage,
  type ProductConfig,
  type ResponseExtensions,
  type SigningKeyPair,
} from '@volact/core';

/**
 * Test support for the trust checks (not exported from the package): product configs with a
 * given trust bundle, host statuses and KMS answers with an extension area.
 */

export const FIXTURE_GROUP = '11111111-1111-4111-8111-111111111111';

/** A product config whose bundle lists these roots (the last is the current one). */
export function productWith(
  roots: readonly { pair: SigningKeyPair; validFrom?: number; validUntil?: number }[],
  options: { delegations?: readonly Buffer[]; skewMinutes?: number } = {},
): ProductConfig {
  const current = roots[roots.length - 1]!.pair.publicKeyRaw;
  return parseProductConfig({
    format: 'volact-product-config/1',
    authority: {
      rootPublicKey: current.toString('base64'),
      roots: roots.map((r) => ({
        publicKey: r.pair.publicKeyRaw.toString('base64'),
        validFrom: new Date(r.validFrom ?? 0).toISOString(),
        ...(r.validUntil === undefined ? {} : { validUntil: new Date(r.validUntil).toISOString() }),
      })),
      ...(options.delegations ? { delegations: options.delegations.map((d) => d.toString('base64')) } : {}),
    },
    group: { id: FIXTURE_GROUP, name: 'fixture', kind: 'app', threshold: 1 },
    gvlk: gvlkFor(current, guidToBytes(FIXTURE_GROUP)).text,
    policy: {
      activationValidityDays: 180,
      initialGraceDays: 30,
      outOfToleranceGraceDays: 30,
      nonGenuineGraceDays: 30,
      maxClockSkewMinutes: options.skewMinutes ?? 240,
    },
  });
}

/** A host status for this host key, signed by `root`. */
export function hostStatusOf(
  root: SigningKeyPair,
  hostKeyRef: Buffer,
  f: { issuedAt: number; nextUpdate?: number; listVersion?: number },
): Buffer {
  return makeHostStatus(
    {
      hostKeyRef,
      listVersion: f.listVersion ?? 1,
      issuedAt: f.issuedAt,
      nextUpdate: f.nextUpdate ?? f.issuedAt + 7 * DAY,
    },
    fileSigner(root),
  );
}

/** A KMS answer signed by the host key at `hostTime`, alone in its batch, with this extension area. */
export function answerOf(f: {
  host: SigningKeyPair;
  certificate: Buffer;
  groupId?: Buffer;
  clientId: Buffer;
  nonce: Buffer;
  hostTime: number;
  count?: number;
  extensions?: ResponseExtensions;
  /** 1: an answer of a release before the extension area (no host status, nothing stapled). */
  protocolVersion?: 1 | 2;
}): Buffer {
  const body = encodeResponseBody(
    {
      groupId: f.groupId ?? guidToBytes(FIXTURE_GROUP),
      clientId: f.clientId,
      nonce: f.nonce,
      hostTime: f.hostTime,
      count: f.count ?? 30,
      activationIntervalMin: 120,
      renewalIntervalMin: 10_080,
    },
    f.protocolVersion ?? 2,
  );
  const signature = signMessage(f.host.privateKey, Buffer.concat([BATCH_CONTEXT, leafHash(body)]));
  const area = f.extensions ? encodeResponseExtensions(f.extensions) : undefined;
  return encodeActivationResponse(body, f.certificate, [], signature, 0, area);
}

/** A KMS host on loopback that answers each request with `answer(request)` (its nonce and client ID). */
export async function startFakeKmsHost(
  answer: (request: ReturnType<typeof decodeActivationRequest>) => Buffer,
): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createServer((socket) => {
    const reader = new FrameReader(4096);
    socket.on('data', (chunk: Buffer) => {
      const [payload] = reader.push(chunk);
      if (payload) socket.end(frame(answer(decodeActivationRequest(Buffer.from(payload)))));
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
