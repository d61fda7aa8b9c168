/**
 * The trust records' test vectors (docs/test-vectors.md, "Trust records") and the field tables of
 * docs/protocol.md's "Trust records" section, from the same fixed seeds as the other vectors
 * (test-vectors.ts). Each field table takes its offsets and sizes from trust/layout.ts and its
 * values from the real decoders.
 */
import { createPrivateKey, createPublicKey, hash, type KeyObject } from 'node:crypto';
import { hostKeyRefOf } from '../installation-id.js';
import { markdownTable, renderLayoutTable, type Layout } from '../wire/layout.js';
import { DELEGATION_PURPOSE, confirmationKeyIndex, decodeDelegation, makeDelegation } from '../trust/delegation.js';
import { keyIdOf } from '../trust/key-id.js';
import {
  DELEGATION_LAYOUT,
  HOST_STATUS_LAYOUT,
  REVOCATION_ENTRY_LAYOUT,
  REVOCATION_LIST_LAYOUT,
  ROOT_TRANSITION_LAYOUT,
  TRUST_LAYOUTS,
} from '../trust/layout.js';
import {
  REVOCATION_KIND,
  REVOCATION_LIST_LIFETIME,
  decodeHostStatus,
  decodeRevocationList,
  makeHostStatus,
  makeRevocationList,
  revocationSubjectOfKeyId,
} from '../trust/revocation.js';
import { decodeRootTransition, makeRootTransition } from '../trust/root-transition.js';
import { fileSigner } from '../trust/signer.js';
import { rawPublicKey } from '../crypto.js';

interface SeedKey {
  readonly seed: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKeyRaw: Buffer;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The same derivation as test-vectors.ts: seed = SHA-256("volact test vectors/v1\0" ‖ label). */
function seedKey(label: string): SeedKey {
  const seed = hash('sha256', `volact test vectors/v1\0${label}`, 'buffer');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { seed, privateKey, publicKeyRaw: rawPublicKey(createPublicKey(privateKey)) };
}

export const TRUST_VECTOR_INPUTS = {
  /** 2026-01-15T12:00:00.000Z (the `now` of the other vectors). */
  now: Date.UTC(2026, 0, 15, 12),
  /** 2026-02-01T00:00:00.000Z: the next root may sign from then. */
  nextValidFrom: Date.UTC(2026, 1, 1),
  delegationSequence: 0,
  /** 2026-01-01T00:00:00.000Z … 2026-04-01T00:00:00.000Z. */
  delegationFrom: Date.UTC(2026, 0, 1),
  delegationUntil: Date.UTC(2026, 3, 1),
  listVersion: 2,
  revokedHostAt: Date.UTC(2026, 0, 10),
  revokedTokenCaAt: Date.UTC(2026, 0, 12),
} as const;

export interface TrustVectors {
  readonly root: SeedKey;
  readonly nextRoot: SeedKey;
  readonly onlineKey: SeedKey;
  readonly host: SeedKey;
  readonly revokedHost: SeedKey;
  readonly revokedTokenCa: SeedKey;
  readonly transition: Buffer;
  readonly delegation: Buffer;
  readonly revocationList: Buffer;
  readonly hostStatus: Buffer;
}

export function buildTrustVectors(): TrustVectors {
  const v = TRUST_VECTOR_INPUTS;
  const root = seedKey('root');
  const nextRoot = seedKey('next root');
  const onlineKey = seedKey('online key');
  const host = seedKey('kms host');
  const revokedHost = seedKey('revoked kms host');
  const revokedTokenCa = seedKey('revoked token ca');
  const rootSigner = fileSigner(root);
  const transition = makeRootTransition(
    { nextPublicKey: nextRoot.publicKeyRaw, issuedAt: v.now, nextValidFrom: v.nextValidFrom },
    rootSigner,
    fileSigner(nextRoot),
  );
  const delegation = makeDelegation(
    {
      delegatePublicKey: onlineKey.publicKeyRaw,
      sequence: v.delegationSequence,
      validFrom: v.delegationFrom,
      validUntil: v.delegationUntil,
      purposes:
        DELEGATION_PURPOSE.confirmations |
        DELEGATION_PURPOSE.phoneHostCertificates |
        DELEGATION_PURPOSE.phoneActivationObjects,
    },
    rootSigner,
  );
  const revocationList = makeRevocationList(
    {
      listVersion: v.listVersion,
      issuedAt: v.now,
      nextUpdate: v.now + REVOCATION_LIST_LIFETIME,
      entries: [
        {
          kind: 'tokenCa',
          subject: revocationSubjectOfKeyId(keyIdOf(revokedTokenCa.publicKeyRaw)),
          revokedAt: v.revokedTokenCaAt,
        },
        { kind: 'host', subject: hostKeyRefOf(revokedHost.publicKeyRaw), revokedAt: v.revokedHostAt },
      ],
    },
    rootSigner,
  );
  const hostStatus = makeHostStatus(
    {
      hostKeyRef: hostKeyRefOf(host.publicKeyRaw),
      listVersion: v.listVersion,
      issuedAt: v.now,
      nextUpdate: v.now + REVOCATION_LIST_LIFETIME,
    },
    rootSigner,
  );
  return {
    root,
    nextRoot,
    onlineKey,
    host,
    revokedHost,
    revokedTokenCa,
    transition,
    delegation,
    revocationList,
    hostStatus,
  };
}

// ---- rendering -------------------------------------------------------------------------------

const iso = (ms: number) => new Date(ms).toISOString();
const hx = (b: Uint8Array) => `\`${Buffer.from(b).toString('hex')}\``;
const timeOf = (ms: number) => `${ms} = ${iso(ms)}`;

function hexBlock(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 64) lines.push(hex.slice(i, i + 64));
  return ['```text', ...lines, '```'].join('\n');
}

type Row = readonly [name: string, value: string];

/**
 * A vector's field table: the layout's fixed fields at `base`, each described (every field, in
 * order), as rows of offset, size, name, bytes and value.
 */
function fieldRows(
  layout: Layout,
  bytes: Buffer,
  values: Readonly<Record<string, string>>,
  base = 0,
  prefix = '',
): string[][] {
  const names = new Set(layout.fields.map((f) => f.name));
  for (const name of Object.keys(values))
    if (!names.has(name)) throw new Error(`layout ${layout.id} has no field ${name}`);
  return layout.fields.map((f) => {
    const value = values[f.name];
    if (value === undefined) throw new Error(`the ${layout.id} vector does not describe field ${f.name}`);
    const at = base + f.offset;
    return [String(at), String(f.size), `\`${prefix}${f.name}\``, hx(bytes.subarray(at, at + f.size)), value];
  });
}

function table(rows: string[][], bytes: Buffer): string {
  let offset = 0;
  for (const r of rows) {
    if (Number(r[0]) !== offset) throw new Error(`a trust vector table jumps from ${offset} to ${r[0]}`);
    offset += Number(r[1]);
  }
  if (offset !== bytes.length) throw new Error(`a trust vector table covers ${offset} bytes of ${bytes.length}`);
  return markdownTable(['off', 'size', 'field', 'bytes (hex)', 'value'], rows);
}

const PURPOSE_NAMES: Readonly<Record<number, string>> = {
  [DELEGATION_PURPOSE.confirmations]: 'confirmations',
  [DELEGATION_PURPOSE.phoneHostCertificates]: 'phone host certificates',
  [DELEGATION_PURPOSE.phoneActivationObjects]: 'phone activation objects',
};

/** The "Trust records" sections of docs/test-vectors.md (markdown lines). */
export function renderTrustVectorSections(t: TrustVectors = buildTrustVectors()): string[] {
  const out: string[] = [];
  const section = (title: string, ...parts: string[]) => out.push(`## ${title}`, '', ...parts.flatMap((p) => [p, '']));
  const rootId = keyIdOf(t.root.publicKeyRaw);
  const rt = decodeRootTransition(t.transition);
  const d = decodeDelegation(t.delegation);
  const rl = decodeRevocationList(t.revocationList);
  const hs = decodeHostStatus(t.hostStatus);
  const rows = (...r: Row[]) =>
    markdownTable(
      ['what', 'value'],
      r.map(([a, b]) => [a, b]),
    );

  section(
    'Trust records: keys',
    'Layouts and rules: [protocol.md](protocol.md#trust-records); design: [trust.md](trust.md). The root is the `root` key above.',
    rows(
      ['root key ID (`root`)', hx(rootId)],
      ['next root seed (label `next root`)', hx(t.nextRoot.seed)],
      ['next root public key', hx(t.nextRoot.publicKeyRaw)],
      ['next root key ID', hx(keyIdOf(t.nextRoot.publicKeyRaw))],
      ['online key public key (label `online key`)', hx(t.onlineKey.publicKeyRaw)],
      ['online key ID', hx(keyIdOf(t.onlineKey.publicKeyRaw))],
      ['revoked host public key (label `revoked kms host`)', hx(t.revokedHost.publicKeyRaw)],
      ['revoked token CA public key (label `revoked token ca`)', hx(t.revokedTokenCa.publicKeyRaw)],
    ),
  );
  const TR = ROOT_TRANSITION_LAYOUT.at;
  section(
    'Root-transition record',
    `The root hands over to the next root, which may sign from ${iso(rt.nextValidFrom)}:`,
    hexBlock(t.transition),
    table(
      fieldRows(ROOT_TRANSITION_LAYOUT, t.transition, {
        version: String(t.transition[TR.version.offset]),
        previousKeyId: 'key ID of the root',
        nextPublicKey: 'the next root public key',
        issuedAt: timeOf(rt.issuedAt),
        nextValidFrom: timeOf(rt.nextValidFrom),
        sigPrevious: 'Ed25519 by the root',
        sigNext: 'Ed25519 by the next root',
      }),
      t.transition,
    ),
    `Both signatures are over \`"volact/root-transition/v1\\0" ‖ bytes 0..${TR.sigPrevious.offset}\`.`,
  );
  const purposes = [1, 2, 4].filter((b) => d.purposes & b).map((b) => PURPOSE_NAMES[b]);
  section(
    'Delegation certificate',
    `The root delegates to the online key (sequence ${d.sequence}: its confirmation IDs carry key index ${confirmationKeyIndex(d.sequence)}, as the confirmation ID vector above):`,
    hexBlock(t.delegation),
    table(
      fieldRows(DELEGATION_LAYOUT, t.delegation, {
        version: String(t.delegation[DELEGATION_LAYOUT.at.version.offset]),
        issuerKeyId: 'key ID of the root',
        delegatePublicKey: 'the online key public key',
        sequence: String(d.sequence),
        validFrom: timeOf(d.validFrom),
        validUntil: timeOf(d.validUntil),
        purposes: `${d.purposes} (${purposes.join(', ')})`,
        signature: 'Ed25519 by the root',
      }),
      t.delegation,
    ),
  );
  const list = t.revocationList;
  const kindName = (kind: keyof typeof REVOCATION_KIND) => `${REVOCATION_KIND[kind]} (${kind})`;
  const entryRows = rl.entries.flatMap((e, i) =>
    fieldRows(
      REVOCATION_ENTRY_LAYOUT,
      list,
      {
        kind: kindName(e.kind),
        subject:
          e.kind === 'host'
            ? 'SHA-256(revoked host public key), first 16 bytes'
            : 'key ID of the revoked token CA, 8 zero bytes',
        revokedAt: timeOf(e.revokedAt),
      },
      REVOCATION_LIST_LAYOUT.size + i * REVOCATION_ENTRY_LAYOUT.size,
      `entries[${i}].`,
    ),
  );
  const sigAt = list.length - 64;
  section(
    'Revocation list',
    `Version ${rl.listVersion}, two entries (a host key and a token CA), sorted by (kind, subject):`,
    hexBlock(list),
    table(
      [
        ...fieldRows(REVOCATION_LIST_LAYOUT, list, {
          version: String(list[REVOCATION_LIST_LAYOUT.at.version.offset]),
          issuerKeyId: 'key ID of the root',
          listVersion: String(rl.listVersion),
          issuedAt: timeOf(rl.issuedAt),
          nextUpdate: timeOf(rl.nextUpdate),
          count: String(rl.entries.length),
        }),
        ...entryRows,
        [String(sigAt), '64', '`signature`', hx(list.subarray(sigAt)), 'Ed25519 by the root'],
      ],
      list,
    ),
    `The signature is over \`"volact/revocations/v1\\0" ‖ bytes 0..${sigAt}\`.`,
  );
  section(
    'Host status',
    `The root states that the host key above (label \`kms host\`) is not on list version ${hs.listVersion}:`,
    hexBlock(t.hostStatus),
    table(
      fieldRows(HOST_STATUS_LAYOUT, t.hostStatus, {
        version: String(t.hostStatus[HOST_STATUS_LAYOUT.at.version.offset]),
        issuerKeyId: 'key ID of the root',
        hostKeyRef: 'SHA-256(host public key), first 16 bytes',
        listVersion: String(hs.listVersion),
        issuedAt: timeOf(hs.issuedAt),
        nextUpdate: timeOf(hs.nextUpdate),
        signature: 'Ed25519 by the root',
      }),
      t.hostStatus,
    ),
  );
  return out;
}

const TRUST_MARKER = /<!-- trust-layout:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/trust-layout -->/g;

/** docs/protocol.md with every `<!-- trust-layout:ID -->…<!-- /trust-layout -->` block rendered from trust/layout.ts. */
export function renderTrustLayoutBlocks(doc: string): string {
  return doc.replace(TRUST_MARKER, (_all, id: string) => {
    const layout = TRUST_LAYOUTS.find((l) => l.id === id);
    if (!layout) throw new Error(`docs/protocol.md names trust layout "${id}", which trust/layout.ts does not declare`);
    return `<!-- trust-layout:${id} -->\n\n${renderLayoutTable(layout)}\n\n<!-- /trust-layout -->`;
  });
}

/** The ids of the trust layout blocks a doc holds. */
export function trustLayoutBlocksOf(doc: string): string[] {
  return [...doc.matchAll(TRUST_MARKER)].map((m) => m[1] as string);
}
