/**
 * The binary layouts, declared once. Each layout is a list of fixed fields (name, type,
 * unit, description); offsets follow from the order and the sizes. The codecs take their
 * offsets from these tables (as constants computed once, at load: the host's hot path reads
 * them like literals), and docs/protocol.md's field tables are rendered from them
 * (`renderLayoutTable`, checked by a test; `npm run docs:vectors` rewrites them).
 *
 * Every integer is unsigned and big-endian (network order). A GUID is its 16 bytes in the
 * order its hex digits are written (see ids.ts), not Microsoft's mixed-endian order.
 */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | `bytes(${number})`;

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** What the number counts, when it is a number: `ms` since the Unix epoch, `minutes`, `days`. */
  readonly unit?: string;
  readonly description: string;
}

export interface Field extends FieldSpec {
  readonly offset: number;
  readonly size: number;
}

/** A part after the fixed fields whose size depends on a field before it (documentation only). */
export interface VariablePart {
  /** The offset as the doc writes it: a number, or `..` after another variable part. */
  readonly offset: string;
  readonly name: string;
  readonly size: string;
  readonly description: string;
}

export interface Layout<Name extends string = string> {
  /** The name of the doc's marker: `<!-- layout:ID -->`. */
  readonly id: string;
  readonly fields: readonly Field[];
  /** The fixed fields by name. */
  readonly at: Readonly<Record<Name, Field>>;
  /** Size of the fixed fields. */
  readonly size: number;
  readonly variable: readonly VariablePart[];
}

export function sizeOfType(type: FieldType): number {
  switch (type) {
    case 'u8':
      return 1;
    case 'u16':
      return 2;
    case 'u32':
      return 4;
    case 'u64':
      return 8;
    default: {
      const m = /^bytes\((\d+)\)$/.exec(type);
      if (!m) throw new RangeError(`unknown field type ${type}`);
      return Number(m[1]);
    }
  }
}

/** A layout from its fields in order: offsets and sizes computed once (also used by trust/layout.ts). */
export function defineLayout<const Specs extends readonly FieldSpec[]>(
  id: string,
  specs: Specs,
  variable: readonly VariablePart[] = [],
): Layout<Specs[number]['name']> {
  const fields: Field[] = [];
  const at: Record<string, Field> = {};
  let offset = 0;
  for (const spec of specs) {
    if (at[spec.name]) throw new Error(`layout ${id}: field ${spec.name} declared twice`);
    const field: Field = Object.freeze({ ...spec, offset, size: sizeOfType(spec.type) });
    fields.push(field);
    at[spec.name] = field;
    offset += field.size;
  }
  return Object.freeze({ id, fields, at: at as Record<Specs[number]['name'], Field>, size: offset, variable });
}

const GUID = 'bytes(16)';

/** ActivationRequest (client → host): one fixed size. */
export const ACTIVATION_REQUEST_LAYOUT = defineLayout('activation-request', [
  {
    name: 'version',
    type: 'u8',
    description: 'protocol version: 2 (the client reads the extension area of the response), or 1',
  },
  { name: 'type', type: 'u8', description: 'message type: 1 (activation request)' },
  {
    name: 'licenceState',
    type: 'u8',
    description:
      'the client licence state: 0 unlicensed, 1 licensed, 2 initial-grace, 3 out-of-tolerance, 4 non-genuine-grace, 5 notification',
  },
  { name: 'flags', type: 'u8', description: 'reserved: 0 (a host refuses any other value)' },
  { name: 'groupId', type: GUID, description: 'the product group (GUID)' },
  { name: 'clientId', type: GUID, description: 'the client machine ID (GUID, random per installation)' },
  { name: 'nonce', type: 'bytes(16)', description: 'random per request; the response echoes it' },
  { name: 'clientTime', type: 'u64', unit: 'ms', description: "the client's clock" },
  { name: 'check', type: 'bytes(8)', description: 'SHA-256 over bytes 0..60 (all fields before), first 8 bytes' },
] as const);

/** The signed body of an ActivationResponse (the Merkle leaf); the rest of the message follows it. */
export const RESPONSE_BODY_LAYOUT = defineLayout(
  'activation-response',
  [
    { name: 'version', type: 'u8', description: "protocol version: the request's (1 or 2)" },
    { name: 'type', type: 'u8', description: 'message type: 2 (activation response)' },
    { name: 'reserved', type: 'u16', description: 'reserved: 0 (a client refuses any other value)' },
    { name: 'groupId', type: GUID, description: "the request's groupId" },
    { name: 'clientId', type: GUID, description: "the request's clientId" },
    { name: 'nonce', type: 'bytes(16)', description: "the request's nonce" },
    { name: 'hostTime', type: 'u64', unit: 'ms', description: "the host's clock when it answered" },
    {
      name: 'count',
      type: 'u32',
      description: "distinct client IDs in the group's window, this one included",
    },
    {
      name: 'activationInterval',
      type: 'u32',
      unit: 'minutes',
      description: 'retry interval while the client is not activated',
    },
    { name: 'renewalInterval', type: 'u32', unit: 'minutes', description: 'renewal interval once activated' },
  ] as const,
  [
    { offset: '72', name: 'certLength', size: '2', description: 'u16: the host certificate length c (≤ 1178)' },
    { offset: '74', name: 'certificate', size: 'c', description: 'the host certificate (version 1 or 2)' },
    { offset: '..', name: 'proofSteps', size: '1', description: 'u8: the Merkle proof length p (0..16)' },
    {
      offset: '..',
      name: 'proof',
      size: '33·p',
      description: 'per step: side (u8: 1 = the sibling is on the left, 0 = on the right), 32-byte sibling hash',
    },
    {
      offset: '..',
      name: 'signature',
      size: '64',
      description: 'Ed25519 by the host key over `"volact/kms-batch/v1\\0" ‖ merkleRoot`',
    },
    {
      offset: '..',
      name: 'extensionsLength',
      size: '2',
      description: 'version 2 only: u16, the extension area length x (0..2048)',
    },
    {
      offset: '..',
      name: 'extensions',
      size: 'x',
      description: 'version 2 only: extension items (below), unsigned by the host: each item is signed by a root',
    },
  ],
);

/**
 * One item of a version-2 response's extension area. Known types: 1 host status (113 bytes,
 * at most 1), 2 root-transition record (185 bytes, at most 4), 3 delegation certificate
 * (126 bytes, at most 4); type 0 is malformed; any other type is skipped by its length.
 */
export const RESPONSE_EXTENSION_LAYOUT = defineLayout(
  'response-extension',
  [
    {
      name: 'itemType',
      type: 'u8',
      description: '1 host status, 2 root-transition record, 3 delegation certificate; 0 refused, others skipped',
    },
    { name: 'itemLength', type: 'u16', description: 'the value length v (exactly 113, 185 or 126 for types 1..3)' },
  ] as const,
  [{ offset: '3', name: 'value', size: 'v', description: 'the record, as the authority signed it' }],
);

/** ErrorResponse (host → client), unsigned. */
export const ERROR_RESPONSE_LAYOUT = defineLayout(
  'error-response',
  [
    { name: 'version', type: 'u8', description: 'protocol version: 1 (to a request of either version)' },
    { name: 'type', type: 'u8', description: 'message type: 3 (error response)' },
    { name: 'code', type: 'u16', description: 'the reason (the codes below)' },
    {
      name: 'nonce',
      type: 'bytes(16)',
      description: "the request's nonce; 16 zero bytes when the request could not be read",
    },
    { name: 'messageLength', type: 'u8', description: 'the message length m (0..200)' },
  ] as const,
  [{ offset: '21', name: 'message', size: 'm', description: 'UTF-8 text for people, cut at a character boundary' }],
);

/** Host certificate version 1 (issued online by the authority). */
export const HOST_CERTIFICATE_LAYOUT = defineLayout(
  'host-certificate',
  [
    { name: 'version', type: 'u8', description: 'certificate version: 1' },
    { name: 'groupCount', type: 'u8', description: 'the number n of group ids (1..64)' },
    { name: 'hostPublicKey', type: 'bytes(32)', description: 'the host public key (Ed25519, raw)' },
    { name: 'serial', type: GUID, description: 'random (GUID)' },
    { name: 'hostKeyId', type: GUID, description: "the authority's id of the activated KMS host key (GUID)" },
    { name: 'issuedAt', type: 'u64', unit: 'ms', description: 'the first instant of validity (inclusive)' },
    { name: 'expiresAt', type: 'u64', unit: 'ms', description: 'the end of validity (exclusive)' },
    { name: 'issuer', type: 'bytes(8)', description: 'SHA-256 of the root public key, first 8 bytes' },
  ] as const,
  [
    { offset: '90', name: 'groupIds', size: '16·n', description: 'the group ids (GUIDs)' },
    {
      offset: '..',
      name: 'signature',
      size: '64',
      description: 'Ed25519 by the root over `"volact/host-cert/v1\\0" ‖ bytes 0..90+16n`',
    },
  ],
);

/** Host certificate version 2 (rebuilt by the host around a phone confirmation's signature). */
export const HOST_CERTIFICATE_V2_LAYOUT = defineLayout(
  'host-certificate-v2',
  [
    { name: 'version', type: 'u8', description: 'certificate version: 2' },
    { name: 'groupCount', type: 'u8', description: 'the number n of group ids (1..64)' },
    { name: 'hostPublicKey', type: 'bytes(32)', description: 'the host public key (Ed25519, raw)' },
    { name: 'keyRef', type: 'bytes(8)', description: "the KMS host key's keyRef (as in its installation ID)" },
    { name: 'issuedDay', type: 'u16', unit: 'days', description: 'days since the epoch, from the confirmation ID' },
    { name: 'validityDays', type: 'u16', unit: 'days', description: '365 (a confirmation ID carries no validity)' },
    {
      name: 'issuer',
      type: 'bytes(8)',
      description: "key ID of the signer (the online key the CID's key index names, or a root for index 0)",
    },
  ] as const,
  [
    { offset: '54', name: 'groupIds', size: '16·n', description: 'the group ids, sorted' },
    {
      offset: '..',
      name: 'signature',
      size: '48',
      description:
        'short Schnorr signature by the issuer (v2 by an online key, v1 by a root): `e·L + s`, 48 bytes big-endian',
    },
  ],
);

/** Installation ID: the fixed start; a KMS host's or an activation object's IID has 16 more bytes. */
export const INSTALLATION_ID_LAYOUT = defineLayout(
  'installation-id',
  [
    {
      name: 'kind',
      type: 'u8',
      description: '`0x11` product installation (MAK, retail), `0x12` KMS host, `0x13` activation object (by phone)',
    },
    {
      name: 'keyRef',
      type: 'bytes(8)',
      description: '`SHA-256("volact-key-ref/v1\\0" ‖ key)`, first 8 bytes',
    },
    {
      name: 'hardwareRef',
      type: 'bytes(8)',
      description:
        '`SHA-256("volact-hardware-ref/v1\\0" ‖ hardware id)`, first 8 bytes (kind `0x13`: hardware id `domain:` ‖ domain)',
    },
    {
      name: 'groupsRef',
      type: 'bytes(4)',
      description: '`SHA-256("volact-groups-ref/v1\\0" ‖ group ids, sorted, 16 bytes each)`, first 4 bytes',
    },
  ] as const,
  [
    {
      offset: '21',
      name: 'hostKeyRef',
      size: '16',
      description: 'kind `0x12` only: `SHA-256(host public key)`, first 16 bytes',
    },
    {
      offset: '21',
      name: 'domainRef',
      size: '16',
      description: 'kind `0x13` only: `SHA-256("volact-domain-ref/v1\\0" ‖ domain)`, first 16 bytes',
    },
    {
      offset: '..',
      name: 'proof',
      size: '4',
      description:
        '`HMAC-SHA256(proofKey, all bytes before)`, first 4 bytes; `proofKey = SHA-256("volact-iid-proof/v1\\0" ‖ key)`',
    },
  ],
);

export const LAYOUTS: readonly Layout[] = [
  ACTIVATION_REQUEST_LAYOUT,
  RESPONSE_BODY_LAYOUT,
  RESPONSE_EXTENSION_LAYOUT,
  ERROR_RESPONSE_LAYOUT,
  HOST_CERTIFICATE_LAYOUT,
  HOST_CERTIFICATE_V2_LAYOUT,
  INSTALLATION_ID_LAYOUT,
];

/**
 * A markdown table with its columns padded as prettier pads them (by characters; none of
 * ours is wide), so a formatted doc keeps the rendered text. `|` in a cell is escaped.
 */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((r) => r.map((c) => c.replace(/\|/g, '\\|')));
  const width = (c: string) => [...c].length;
  const widths = header.map((h, i) => Math.max(3, width(h), ...cells.map((r) => width(r[i] ?? ''))));
  const line = (r: readonly string[]) =>
    `| ${widths.map((w, i) => (r[i] ?? '') + ' '.repeat(w - width(r[i] ?? ''))).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

/** The layout as the doc's field table: the fixed fields, then the variable parts. */
export function renderLayoutTable(layout: Layout): string {
  return markdownTable(
    ['off', 'size', 'field', 'type', 'unit', 'description'],
    [
      ...layout.fields.map((f) => [
        String(f.offset),
        String(f.size),
        `\`${f.name}\``,
        f.type,
        f.unit ?? '',
        f.description,
      ]),
      ...layout.variable.map((v) => [v.offset, v.size, `\`${v.name}\``, '', '', v.description]),
    ],
  );
}
