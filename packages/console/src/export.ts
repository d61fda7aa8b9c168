import { randomBytes, scryptSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import {
  CoreError,
  aeadOpen,
  aeadSeal,
  agentStatusSchema,
  lastFiveOf,
  machineFactsFields,
  parseKeyOfType,
  writeFileAtomic,
  type KeyType,
} from '@volact/core';
import { parseMachineAddress } from './addresses.js';
import { ConsoleError } from './errors.js';
import { MISSING_SECRET, type SecretBox } from './secrets.js';
import type { ConsoleStore, ImportCounts, ImportData, MachineFacts } from './store.js';

/**
 * Export and import of the whole console data set (the reference's CILX files): one versioned
 * JSON file. Secrets (product keys, agent tokens) are left out unless asked for; then each is
 * sealed with AES-256-GCM under a key derived by scrypt from a passphrase (random salt in the
 * file), never under the console's own key file.
 */
export const EXPORT_FORMAT = 'volact-console-export/1';
/** The largest file an import reads. */
export const MAX_EXPORT_BYTES = 64 * 1024 * 1024;
export const MIN_PASSPHRASE_LENGTH = 12;

/** Fixed scrypt cost (2^15, 8, 1: 32 MiB, ~100 ms): a file cannot ask an import for more. */
const SCRYPT = { N: 32_768, r: 8, p: 1 } as const;
const SCRYPT_MAXMEM = 64 * 1024 * 1024;
const SALT_BYTES = 16;
const CHECK_TEXT = 'volact-console-export passphrase check';

const LIMITS = {
  machines: 50_000,
  statusHistory: 1_000_000,
  keys: 10_000,
  confirmationIds: 200_000,
  operations: 1_000_000,
  agentTokens: 50_000,
} as const;

// ---- the file's schema ---------------------------------------------------------------------

const time = z.iso.datetime();
const sealedSecret = z
  .string()
  .max(4_000)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'not base64');
const address = z
  .string()
  .max(300)
  .refine((a) => {
    try {
      return parseMachineAddress(a) === a;
    } catch {
      return false;
    }
  }, 'not a machine address (HOST:PORT, [IPv6]:PORT or https://HOST:PORT, canonical form)');
const fingerprint = z.string().regex(/^(missing:)?[0-9a-f]{64}$/, 'not a 64-digit hex fingerprint');
const keyTypes = ['mak', 'gvlk', 'kms-host'] as const satisfies readonly KeyType[];

const exportSchema = z.strictObject({
  format: z.literal(EXPORT_FORMAT),
  exportedAt: time,
  secrets: z
    .strictObject({
      kdf: z.literal('scrypt'),
      N: z.literal(SCRYPT.N),
      r: z.literal(SCRYPT.r),
      p: z.literal(SCRYPT.p),
      salt: sealedSecret.refine((s) => Buffer.from(s, 'base64').length === SALT_BYTES, `not ${SALT_BYTES} bytes`),
      cipher: z.literal('aes-256-gcm'),
      check: sealedSecret,
    })
    .nullable(),
  machines: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(300),
        address,
        addedAt: time,
        lastSeenAt: time.nullable(),
        lastError: z
          .strictObject({ code: z.string().min(1).max(100), message: z.string().max(1_000), at: time })
          .nullable(),
        /** With secrets: the id of its entry in agentTokens (null when the exporting console lacked it). */
        agentToken: z.number().int().nonnegative().nullable().optional(),
        /** What its agent last said of the machine (host name, OS, …); absent before issue 15 or never read. */
        facts: z.strictObject({ ...machineFactsFields, lastBootAt: time.nullable() }).optional(),
      }),
    )
    .max(LIMITS.machines),
  statusHistory: z
    .array(
      z.strictObject({
        machine: address,
        takenAt: time,
        digest: z.string().regex(/^[0-9a-f]{64}$/, 'not a SHA-256 hex digest'),
        status: agentStatusSchema,
      }),
    )
    .max(LIMITS.statusHistory),
  keys: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(64),
        type: z.enum(keyTypes),
        last5: z.string().regex(/^…[0-9A-Z]{5}$/, 'not …ABCDE'),
        fingerprint,
        addedAt: time,
        secret: sealedSecret.optional(),
        /** A MAK's counters as last read from the authority (absent in files of earlier consoles). */
        counters: z
          .strictObject({
            limit: z.number().int().nonnegative().nullable(),
            used: z.number().int().nonnegative(),
            remaining: z.number().int().nonnegative().nullable(),
            authority: z.string().min(1).max(300),
            countedAt: time,
          })
          .nullable()
          .optional(),
      }),
    )
    .max(LIMITS.keys),
  confirmationIds: z
    .array(
      z.strictObject({
        machine: address,
        installationId: z.string().min(1).max(400),
        confirmationId: z.string().min(1).max(400),
        authority: z.string().max(300).nullable(),
        obtainedAt: time,
      }),
    )
    .max(LIMITS.confirmationIds),
  operations: z
    .array(
      z.strictObject({
        at: time,
        operation: z.string().min(1).max(100),
        machine: z.string().max(300).nullable(),
        ok: z.boolean(),
        code: z.string().max(100).nullable(),
        detail: z.string().max(2_000).nullable(),
      }),
    )
    .max(LIMITS.operations),
  agentTokens: z
    .array(z.strictObject({ id: z.number().int().nonnegative(), createdAt: time, secret: sealedSecret }))
    .max(LIMITS.agentTokens)
    .optional(),
});

export type ConsoleExport = z.infer<typeof exportSchema>;

// ---- passphrase sealing ----------------------------------------------------------------------

class PassphraseBox {
  readonly #key: Buffer;
  constructor(passphrase: string, salt: Buffer) {
    this.#key = scryptSync(passphrase.normalize('NFC'), salt, 32, { ...SCRYPT, maxmem: SCRYPT_MAXMEM });
  }
  seal(plain: string, aad: string): string {
    return aeadSeal(this.#key, plain, aad).toString('base64');
  }
  /** null when it does not open (wrong passphrase, or altered). */
  open(sealed: string, aad: string): string | null {
    return aeadOpen(this.#key, Buffer.from(sealed, 'base64'), aad)?.toString('utf8') ?? null;
  }
}

// Additional data binds each sealed secret to its place in the file.
const CHECK_AAD = `${EXPORT_FORMAT}\0check`;
const keyAad = (fp: string) => `${EXPORT_FORMAT}\0key\0${fp}`;
const tokenAad = (id: number) => `${EXPORT_FORMAT}\0token\0${id}`;

function checkPassphrase(passphrase: string): string {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new ConsoleError(
      'PASSPHRASE_REQUIRED',
      `the passphrase has fewer than ${MIN_PASSPHRASE_LENGTH} characters: the secrets in the file would be guessable`,
    );
  }
  return passphrase;
}

// ---- export ----------------------------------------------------------------------------------

export interface ExportSummary {
  readonly path: string;
  readonly secrets: boolean;
  readonly counts: {
    readonly machines: number;
    readonly statusHistory: number;
    readonly keys: number;
    readonly confirmationIds: number;
    readonly operations: number;
    readonly agentTokens: number;
  };
  /** With secrets: keys and agent tokens this console itself lacks (imported without secrets). */
  readonly secretsMissing: { readonly keys: number; readonly agentTokens: number };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds the export of everything in the store (secrets sealed under `passphrase`, or left out). */
export async function buildExport(
  store: ConsoleStore,
  box: SecretBox,
  now: number,
  passphrase?: string,
): Promise<{ data: ConsoleExport; secretsMissing: ExportSummary['secretsMissing'] }> {
  const dump = await store.dump();
  const salt = randomBytes(SALT_BYTES);
  const sealer = passphrase === undefined ? null : new PassphraseBox(checkPassphrase(passphrase), salt);
  const secretsMissing = { keys: 0, agentTokens: 0 };
  /** A console secret, or null when this console lacks it (imported without secrets). */
  const unseal = (sealed: string, purpose: string, what: string): string | null => {
    if (sealed === MISSING_SECRET) return null;
    return box.unseal(sealed, purpose, what);
  };

  const addresses = new Map(dump.machines.map((m) => [m.id, m.address]));
  const machineAddress = (id: number) => addresses.get(id) as string;
  const agentTokens: NonNullable<ConsoleExport['agentTokens']> = [];
  const tokenRefs = new Map<number, number | null>();
  if (sealer) {
    for (const t of dump.tokens) {
      if (!dump.machines.some((m) => m.tokenId === t.id)) continue;
      const text = unseal(t.sealed, `token:${t.fingerprint}`, 'an agent token');
      if (text === null) {
        secretsMissing.agentTokens++;
        tokenRefs.set(t.id, null);
        continue;
      }
      const id = agentTokens.length + 1;
      agentTokens.push({ id, createdAt: iso(t.createdAt), secret: sealer.seal(text, tokenAad(id)) });
      tokenRefs.set(t.id, id);
    }
  }

  const data: ConsoleExport = {
    format: EXPORT_FORMAT,
    exportedAt: iso(now),
    secrets: sealer
      ? {
          kdf: 'scrypt',
          ...SCRYPT,
          salt: salt.toString('base64'),
          cipher: 'aes-256-gcm',
          check: sealer.seal(CHECK_TEXT, CHECK_AAD),
        }
      : null,
    machines: dump.machines.map((m) => ({
      name: m.name,
      address: m.address,
      addedAt: iso(m.addedAt),
      lastSeenAt: m.lastSeenAt === null ? null : iso(m.lastSeenAt),
      lastError: m.lastError && { code: m.lastError.code, message: m.lastError.message, at: iso(m.lastError.at) },
      ...(sealer ? { agentToken: tokenRefs.get(m.tokenId) ?? null } : {}),
      ...(m.facts
        ? {
            facts: {
              hostName: m.facts.hostName,
              os: m.facts.os,
              osVersion: m.facts.osVersion,
              productVersion: m.facts.productVersion,
              lastBootAt: m.facts.lastBootAt === null ? null : iso(m.facts.lastBootAt),
            },
          }
        : {}),
    })),
    statusHistory: dump.snapshots.map((s) => ({
      machine: machineAddress(s.machineId),
      takenAt: iso(s.takenAt),
      digest: s.digest,
      status: s.status,
    })),
    keys: dump.keys.map((k) => {
      const entry = {
        name: k.name,
        type: k.type as (typeof keyTypes)[number],
        last5: k.last5,
        fingerprint: k.fingerprint,
        counters: k.counters && { ...k.counters, countedAt: iso(k.counters.countedAt) },
      };
      if (!sealer) return { ...entry, addedAt: iso(k.addedAt) };
      const text = unseal(k.sealed, `key:${k.fingerprint}`, `stored key "${k.name}"`);
      if (text === null) secretsMissing.keys++;
      return {
        ...entry,
        addedAt: iso(k.addedAt),
        ...(text === null ? {} : { secret: sealer.seal(text, keyAad(k.fingerprint)) }),
      };
    }),
    confirmationIds: dump.confirmations.map((c) => ({
      machine: machineAddress(c.machineId),
      installationId: c.installationId,
      confirmationId: c.confirmationId,
      authority: c.authority,
      obtainedAt: iso(c.obtainedAt),
    })),
    operations: dump.operations.map((o) => ({
      at: iso(o.at),
      operation: o.operation,
      machine: o.machine,
      ok: o.ok,
      code: o.code,
      detail: o.detail,
    })),
    ...(sealer ? { agentTokens } : {}),
  };
  return { data, secretsMissing };
}

export async function exportToFile(
  store: ConsoleStore,
  box: SecretBox,
  now: number,
  path: string,
  passphrase?: string,
): Promise<ExportSummary> {
  const { text, summary } = await exportToText(store, box, now, passphrase);
  writeFileAtomic(path, text);
  return { ...summary, path };
}

/** The export file's text (what exportToFile writes), with its summary (`path` empty): the web UI's download. */
export async function exportToText(
  store: ConsoleStore,
  box: SecretBox,
  now: number,
  passphrase?: string,
): Promise<{ text: string; summary: ExportSummary }> {
  const { data, secretsMissing } = await buildExport(store, box, now, passphrase);
  const text = `${JSON.stringify(data, null, 1)}\n`;
  const summary: ExportSummary = {
    path: '',
    secrets: data.secrets !== null,
    counts: {
      machines: data.machines.length,
      statusHistory: data.statusHistory.length,
      keys: data.keys.length,
      confirmationIds: data.confirmationIds.length,
      operations: data.operations.length,
      agentTokens: data.agentTokens?.length ?? 0,
    },
    secretsMissing,
  };
  return { text, summary };
}

// ---- import ----------------------------------------------------------------------------------

const invalid = (message: string) => new ConsoleError('IMPORT_INVALID', message);

/** Strict parse: the exact format, bounded sizes; errors name the bad field. Nothing is written. */
export function parseExport(text: string): ConsoleExport {
  if (Buffer.byteLength(text) > MAX_EXPORT_BYTES) {
    throw new ConsoleError('IMPORT_TOO_LARGE', `the file is larger than ${MAX_EXPORT_BYTES / 1024 / 1024} MiB`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`the file is not JSON (${(err as Error).message.slice(0, 200)})`);
  }
  if (typeof raw === 'object' && raw !== null && 'format' in raw && raw.format !== EXPORT_FORMAT) {
    const given = typeof raw.format === 'string' ? `"${raw.format.slice(0, 100)}"` : typeof raw.format;
    throw invalid(`format: ${given} is not ${EXPORT_FORMAT} (this console reads that version only)`);
  }
  const parsed = exportSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const where =
      issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('') ||
      '(the file)';
    if (issue.code === 'too_big' && issue.path.length === 1) {
      throw new ConsoleError('IMPORT_TOO_LARGE', `${where}: more than ${String(issue.maximum)} entries`);
    }
    throw invalid(`${where}: ${issue.message}`);
  }
  const data = parsed.data;

  // Cross-references and duplicates the schema cannot see.
  const seen = new Set<string>();
  const names = new Set<string>();
  for (const [i, m] of data.machines.entries()) {
    if (seen.has(m.address)) throw invalid(`machines[${i}].address: ${m.address} is listed twice`);
    if (names.has(m.name.toLowerCase())) throw invalid(`machines[${i}].name: "${m.name}" is listed twice`);
    seen.add(m.address);
    names.add(m.name.toLowerCase());
  }
  for (const [i, s] of data.statusHistory.entries()) {
    if (!seen.has(s.machine)) throw invalid(`statusHistory[${i}].machine: ${s.machine} is not among the machines`);
  }
  for (const [i, c] of data.confirmationIds.entries()) {
    if (!seen.has(c.machine)) throw invalid(`confirmationIds[${i}].machine: ${c.machine} is not among the machines`);
  }
  const keyNames = new Set<string>();
  const fingerprints = new Set<string>();
  for (const [i, k] of data.keys.entries()) {
    if (keyNames.has(k.name.toLowerCase())) throw invalid(`keys[${i}].name: "${k.name}" is listed twice`);
    if (fingerprints.has(k.fingerprint)) throw invalid(`keys[${i}].fingerprint: listed twice`);
    keyNames.add(k.name.toLowerCase());
    fingerprints.add(k.fingerprint);
    if (k.secret !== undefined && data.secrets === null) {
      throw invalid(`keys[${i}].secret: the file has no "secrets" header for it`);
    }
  }
  if (data.agentTokens !== undefined && data.secrets === null) {
    throw invalid('agentTokens: the file has no "secrets" header for them');
  }
  const tokenIds = new Set<number>();
  for (const [i, t] of (data.agentTokens ?? []).entries()) {
    if (tokenIds.has(t.id)) throw invalid(`agentTokens[${i}].id: ${t.id} is listed twice`);
    tokenIds.add(t.id);
  }
  for (const [i, m] of data.machines.entries()) {
    if (m.agentToken !== undefined && m.agentToken !== null && !tokenIds.has(m.agentToken)) {
      throw invalid(`machines[${i}].agentToken: ${m.agentToken} is not in agentTokens`);
    }
  }
  return data;
}

/** Reads an export file, refusing one larger than MAX_EXPORT_BYTES before reading it. */
export function readExportFile(path: string): ConsoleExport {
  if (statSync(path).size > MAX_EXPORT_BYTES) {
    throw new ConsoleError(
      'IMPORT_TOO_LARGE',
      `${path} is larger than ${MAX_EXPORT_BYTES / 1024 / 1024} MiB: not a console export this console reads`,
    );
  }
  return parseExport(readFileSync(path, 'utf8'));
}

/**
 * Opens the file's secrets with the passphrase and re-seals them under this console's key,
 * giving what the store merges. Throws before anything is written.
 */
export function prepareImport(data: ConsoleExport, box: SecretBox, passphrase?: string): ImportData {
  let opener: PassphraseBox | null = null;
  if (data.secrets !== null) {
    if (passphrase === undefined) {
      throw new ConsoleError(
        'PASSPHRASE_REQUIRED',
        'the file holds secrets (keys, agent tokens): give the passphrase it was exported with (--passphrase-file)',
      );
    }
    opener = new PassphraseBox(passphrase, Buffer.from(data.secrets.salt, 'base64'));
    if (opener.open(data.secrets.check, CHECK_AAD) !== CHECK_TEXT) {
      throw new ConsoleError(
        'PASSPHRASE_WRONG',
        "the passphrase does not open the file's secrets (or the file was altered); nothing was imported",
      );
    }
  }
  const open = (sealed: string, aad: string, where: string): string => {
    const text = opener?.open(sealed, aad);
    if (text === null || text === undefined) {
      throw invalid(`${where}: does not decrypt under the passphrase that opens the file: the file was altered`);
    }
    return text;
  };
  const ms = (t: string) => Date.parse(t);

  const tokens = new Map<number, { fingerprint: string; sealed: string; createdAt: number }>();
  for (const [i, t] of (data.agentTokens ?? []).entries()) {
    const text = open(t.secret, tokenAad(t.id), `agentTokens[${i}].secret`);
    if (text.length < 16) throw invalid(`agentTokens[${i}].secret: shorter than an agent token`);
    const fp = box.fingerprint(text, 'token');
    tokens.set(t.id, { fingerprint: fp, sealed: box.seal(text, `token:${fp}`), createdAt: ms(t.createdAt) });
  }

  return {
    machines: data.machines.map((m) => ({
      name: m.name,
      address: m.address,
      addedAt: ms(m.addedAt),
      lastSeenAt: m.lastSeenAt === null ? null : ms(m.lastSeenAt),
      lastError: m.lastError && { code: m.lastError.code, message: m.lastError.message, at: ms(m.lastError.at) },
      token: m.agentToken === undefined || m.agentToken === null ? null : (tokens.get(m.agentToken) ?? null),
    })),
    snapshots: data.statusHistory.map((s) => ({
      address: s.machine,
      takenAt: ms(s.takenAt),
      digest: s.digest,
      status: s.status,
    })),
    keys: data.keys.map((k, i) => {
      const base = {
        name: k.name,
        type: k.type,
        last5: k.last5,
        addedAt: ms(k.addedAt),
        counters: k.counters ? { ...k.counters, countedAt: ms(k.counters.countedAt) } : null,
      };
      if (k.secret === undefined) return { ...base, fingerprint: k.fingerprint, sealed: null };
      const text = open(k.secret, keyAad(k.fingerprint), `keys[${i}].secret`);
      try {
        parseKeyOfType(text, k.type);
      } catch (err) {
        if (err instanceof CoreError) throw invalid(`keys[${i}].secret: ${err.message}`);
        throw err;
      }
      if (lastFiveOf(text) !== k.last5) throw invalid(`keys[${i}].last5: ${k.last5} is not the key's last five`);
      const fp = box.fingerprint(text, 'key');
      return { ...base, fingerprint: fp, sealed: box.seal(text, `key:${fp}`) };
    }),
    confirmations: data.confirmationIds.map((c) => ({
      address: c.machine,
      installationId: c.installationId,
      confirmationId: c.confirmationId,
      authority: c.authority,
      obtainedAt: ms(c.obtainedAt),
    })),
    operations: data.operations.map((o) => ({ ...o, at: ms(o.at) })),
  };
}

export interface ImportSummary extends ImportCounts {
  readonly path: string;
  /** Whether the file carried secrets (opened with the passphrase). */
  readonly secrets: boolean;
  readonly exportedAt: string;
}

/**
 * The agents' facts of the file's machines, for those that have none here (a restore, a new
 * console): names shown and searched as before the export. Facts read here win: they are newer
 * or as new, and the next refresh replaces them anyway.
 */
async function restoreFacts(store: ConsoleStore, data: ConsoleExport): Promise<void> {
  const entries: { machineId: number; facts: MachineFacts }[] = [];
  for (const m of data.machines) {
    if (!m.facts) continue;
    const here = await store.findMachine(m.address);
    if (!here || here.address !== m.address || here.facts) continue;
    const f = m.facts;
    entries.push({
      machineId: here.id,
      facts: {
        hostName: f.hostName,
        os: f.os,
        osVersion: f.osVersion,
        productVersion: f.productVersion,
        lastBootAt: f.lastBootAt === null ? null : Date.parse(f.lastBootAt),
      },
    });
  }
  if (entries.length > 0) await store.views.setMachineFacts(entries);
}

export async function importFromFile(
  store: ConsoleStore,
  box: SecretBox,
  path: string,
  passphrase?: string,
): Promise<ImportSummary> {
  const data = readExportFile(path);
  const counts = await store.importData(prepareImport(data, box, passphrase));
  await restoreFacts(store, data);
  return { path, secrets: data.secrets !== null, exportedAt: data.exportedAt, ...counts };
}

/** importFromFile for an export file's text (the web UI's upload); `path` is empty. */
export async function importFromText(
  store: ConsoleStore,
  box: SecretBox,
  text: string,
  passphrase?: string,
): Promise<ImportSummary> {
  const data = parseExport(text);
  const counts = await store.importData(prepareImport(data, box, passphrase));
  await restoreFacts(store, data);
  return { path: '', secrets: data.secrets !== null, exportedAt: data.exportedAt, ...counts };
}

/** Whether an import wrote anything. */
export const importChanged = (c: ImportCounts): boolean =>
  [c.machines, c.statusHistory, c.keys, c.confirmationIds, c.operations].some((k) => k.added + k.updated > 0);
