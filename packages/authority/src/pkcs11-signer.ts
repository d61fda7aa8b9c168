/**
 * The root key in a PKCS#11 token (an HSM, a smart card, SoftHSM2): generated in the token, never
 * exported (CKA_SENSITIVE true, CKA_EXTRACTABLE false), and every signature is made by the token
 * (CKM_EDDSA over Ed25519). Driven through pkcs11js, a native addon whose calls are synchronous,
 * so the signer keeps the `Signer` interface: `sign(message): Buffer`.
 *
 * One module (the vendor's `.so`) is loaded and initialised once per process and path, shared by
 * every signer open on it, and finalised and unloaded when the last one closes: opening again
 * loads it afresh (SoftHSM2 then re-reads its configuration and its token directory).
 *
 * SoftHSM2 reads SOFTHSM2_CONF from the process environment when the module is initialised; this
 * file never reads the environment: the CLI's environment reaches the library as it is.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { verify } from 'node:crypto';
import { keyFingerprint, publicKeyFromRaw } from '@volact/core';
import type * as Pkcs11Js from 'pkcs11js';
import type { PKCS11, Template } from 'pkcs11js';
import { AuthorityError } from './errors.js';

/** Debian's SoftHSM2 module: the module used when the URI names none. */
export const DEFAULT_PKCS11_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
/** The label prefix of root keys in a token when the URI has no `object=`. */
export const DEFAULT_OBJECT_LABEL = 'volact-root';

/** What a `pkcs11:` URI names (RFC 7512 subset). */
export interface Pkcs11Location {
  readonly token?: string;
  readonly slotId?: string;
  readonly serial?: string;
  /** Label (prefix) of the root key objects. */
  readonly object: string;
  readonly modulePath: string;
  readonly pinFile?: string;
  /** A PIN handed over by the caller (the CLI, from its environment); never printed. */
  readonly pin?: string;
}

/** A signer whose private key is in a token; close() ends its session. */
export interface Pkcs11Signer {
  readonly publicKeyRaw: Buffer;
  readonly keyId: Buffer;
  /** The CKA_LABEL of the key pair in the token. */
  readonly label: string;
  sign(message: Uint8Array): Buffer;
  close(): void;
}

// PKCS#11 constants (v2.40 / v3.0): numbers, so nothing depends on which the addon exports.
const CKO_PUBLIC_KEY = 2;
const CKO_PRIVATE_KEY = 3;
const CKK_EC_EDWARDS = 0x40;
const CKA_CLASS = 0x0;
const CKA_TOKEN = 0x1;
const CKA_PRIVATE = 0x2;
const CKA_LABEL = 0x3;
const CKA_KEY_TYPE = 0x100;
const CKA_ID = 0x102;
const CKA_SENSITIVE = 0x103;
const CKA_SIGN = 0x108;
const CKA_VERIFY = 0x10a;
const CKA_EXTRACTABLE = 0x162;
const CKA_EC_PARAMS = 0x180;
const CKA_EC_POINT = 0x181;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const CKU_USER = 1;
const CKF_RW_SESSION = 2;
const CKF_SERIAL_SESSION = 4;

const CKR = {
  0x30: 'CKR_DEVICE_ERROR',
  0x32: 'CKR_DEVICE_REMOVED',
  0x60: 'CKR_KEY_HANDLE_INVALID',
  0x82: 'CKR_OBJECT_HANDLE_INVALID',
  0xa0: 'CKR_PIN_INCORRECT',
  0xa1: 'CKR_PIN_INVALID',
  0xa2: 'CKR_PIN_LEN_RANGE',
  0xa3: 'CKR_PIN_EXPIRED',
  0xa4: 'CKR_PIN_LOCKED',
  0xb0: 'CKR_SESSION_CLOSED',
  0xb3: 'CKR_SESSION_HANDLE_INVALID',
  0xe0: 'CKR_TOKEN_NOT_PRESENT',
  0xe1: 'CKR_TOKEN_NOT_RECOGNIZED',
  0x100: 'CKR_USER_ALREADY_LOGGED_IN',
  0x101: 'CKR_USER_NOT_LOGGED_IN',
  0x102: 'CKR_USER_PIN_NOT_INITIALIZED',
  0x191: 'CKR_CRYPTOKI_ALREADY_INITIALIZED',
} as const;
const PIN_REFUSALS = new Set([0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0x102]);
/** Errors after which a new session (and login) may succeed: the token was re-plugged, the session dropped. */
const SESSION_LOST = new Set([0x30, 0x32, 0x60, 0x82, 0xb0, 0xb3, 0xe0, 0x101]);

/** DER of the OID 1.3.101.112 (id-Ed25519), and PKCS#11 3.0's printable-string form. */
const ED25519_PARAMS_OID = Buffer.from('06032b6570', 'hex');
const ED25519_PARAMS_NAME = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519', 'ascii')]);

const PROBE = Buffer.from('volact/pkcs11-probe/v1', 'ascii');

const codeOf = (err: unknown): number | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && (err as Error).name === 'Pkcs11Error' ? code : undefined;
};
const ckrName = (err: unknown): string => {
  const code = codeOf(err);
  if (code === undefined) return err instanceof Error ? err.message : String(err);
  return CKR[code as keyof typeof CKR] ?? (err as Error).message ?? `CKR 0x${code.toString(16)}`;
};

// --- the module registry ---------------------------------------------------------------------

interface LoadedModule {
  readonly module: PKCS11;
  refs: number;
  /** False when another loader in this process had initialised it (then it is not finalised here). */
  readonly initialisedHere: boolean;
}
const modules = new Map<string, LoadedModule>();

function unavailable(message: string): AuthorityError {
  return new AuthorityError('SIGNER_TOKEN_UNAVAILABLE', message);
}

function acquireModule(modulePath: string): LoadedModule {
  const held = modules.get(modulePath);
  if (held) {
    held.refs++;
    return held;
  }
  let pkcs11js: typeof Pkcs11Js;
  try {
    pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Js;
  } catch (err) {
    throw unavailable(
      `the PKCS#11 addon (pkcs11js) cannot be loaded (${(err as Error).message.split('\n')[0]}): ` +
        'reinstall with `npm_config_nodedir=/usr npm ci` (it builds with node-gyp), or use the file root (--signer file)',
    );
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(modulePath);
  } catch (err) {
    throw unavailable(
      `the PKCS#11 module ${modulePath} cannot be loaded (${(err as Error).message.split('\n')[0]}): ` +
        "install the token's module (SoftHSM2: `apt-get install softhsm2`) or name it with module-path= in --signer",
    );
  }
  let initialisedHere = true;
  try {
    module.C_Initialize();
  } catch (err) {
    if (codeOf(err) === 0x191) {
      initialisedHere = false;
    } else {
      try {
        module.close();
      } catch {
        // nothing more to release
      }
      throw unavailable(
        `the PKCS#11 module ${modulePath} failed to initialise (${ckrName(err)}): check its configuration ` +
          '(SoftHSM2: SOFTHSM2_CONF names a readable softhsm2.conf whose tokendir exists)',
      );
    }
  }
  const loaded = { module, refs: 1, initialisedHere };
  modules.set(modulePath, loaded);
  return loaded;
}

function releaseModule(modulePath: string, loaded: LoadedModule): void {
  loaded.refs--;
  if (loaded.refs > 0 || modules.get(modulePath) !== loaded) return;
  modules.delete(modulePath);
  try {
    if (loaded.initialisedHere) loaded.module.C_Finalize();
    loaded.module.close();
  } catch {
    // the module is going away either way
  }
}

// --- token, session, login -------------------------------------------------------------------

const slotNumber = (slot: Buffer): string =>
  slot.length >= 8 ? slot.readBigUInt64LE(0).toString() : slot.readUInt32LE(0).toString();

/** How messages name the token: its label and, when known, its slot. */
function tokenName(loc: Pkcs11Location, slot?: string): string {
  const parts = [loc.token !== undefined ? `token "${loc.token}"` : 'the token'];
  if (slot !== undefined || loc.slotId !== undefined) parts.push(`in slot ${slot ?? loc.slotId}`);
  return parts.join(' ');
}

function findSlot(module: PKCS11, loc: Pkcs11Location): { handle: Buffer; id: string } {
  const present: string[] = [];
  let slots: Buffer[];
  try {
    slots = module.C_GetSlotList(true);
  } catch (err) {
    throw unavailable(`the PKCS#11 module ${loc.modulePath} cannot list its slots (${ckrName(err)})`);
  }
  for (const handle of slots) {
    const id = slotNumber(handle);
    let label: string;
    let serial: string;
    try {
      const info = module.C_GetTokenInfo(handle);
      label = info.label.trimEnd();
      serial = info.serialNumber.trimEnd();
    } catch {
      continue;
    }
    if (label !== '') present.push(`"${label}" (slot ${id})`);
    if (loc.token !== undefined && label !== loc.token) continue;
    if (loc.slotId !== undefined && id !== loc.slotId) continue;
    if (loc.serial !== undefined && serial !== loc.serial) continue;
    return { handle, id };
  }
  throw unavailable(
    `no ${tokenName(loc)}${loc.serial !== undefined ? ` with serial ${loc.serial}` : ''} in the PKCS#11 module ` +
      `${loc.modulePath} (tokens present: ${present.length > 0 ? present.join(', ') : 'none'}): plug the token in, ` +
      `initialise it (SoftHSM2: softhsm2-util --init-token --free --label ${loc.token ?? 'volact'} …), ` +
      'or correct token= / slot-id= in --signer',
  );
}

function readPin(loc: Pkcs11Location, slot: string): string {
  if (loc.pin !== undefined) return loc.pin;
  if (loc.pinFile === undefined) {
    throw new AuthorityError(
      'SIGNER_TOKEN_LOCKED',
      `no PIN for ${tokenName(loc, slot)}: add pin-source=file:/path/to/pin-file (mode 0600) to --signer`,
    );
  }
  try {
    return readFileSync(loc.pinFile, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new AuthorityError(
      'SIGNER_TOKEN_LOCKED',
      `the PIN file ${loc.pinFile} for ${tokenName(loc, slot)} cannot be read ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): restore it or correct pin-source=`,
    );
  }
}

interface Session {
  readonly module: PKCS11;
  readonly handle: Buffer;
  readonly slot: string;
  close(): void;
}

function openSession(loc: Pkcs11Location, readWrite: boolean): Session {
  const loaded = acquireModule(loc.modulePath);
  let handle: Buffer | undefined;
  let slotId = loc.slotId;
  try {
    const slot = findSlot(loaded.module, loc);
    slotId = slot.id;
    try {
      handle = loaded.module.C_OpenSession(slot.handle, CKF_SERIAL_SESSION | (readWrite ? CKF_RW_SESSION : 0));
    } catch (err) {
      throw unavailable(
        `cannot open a session with ${tokenName(loc, slot.id)} of the PKCS#11 module ${loc.modulePath} (${ckrName(err)})`,
      );
    }
    const pin = readPin(loc, slot.id);
    try {
      loaded.module.C_Login(handle, CKU_USER, pin);
    } catch (err) {
      const code = codeOf(err);
      if (code === 0x100) {
        // Another session of this process logged in already: the login is per application.
      } else if (code !== undefined && PIN_REFUSALS.has(code)) {
        const fix =
          code === 0xa4
            ? 'the token is locked after too many wrong PINs: its security officer unlocks it (sets a new user PIN)'
            : code === 0x102
              ? 'the token has no user PIN yet: its security officer sets one'
              : `put the right PIN in ${loc.pinFile ?? 'the PIN file'}`;
        throw new AuthorityError(
          'SIGNER_TOKEN_LOCKED',
          `${tokenName(loc, slot.id)} refused the PIN${loc.pinFile !== undefined ? ` from ${loc.pinFile}` : ''} (${ckrName(err)}): ${fix}`,
        );
      } else {
        throw unavailable(`cannot log in to ${tokenName(loc, slot.id)} (${ckrName(err)})`);
      }
    }
  } catch (err) {
    if (handle) {
      try {
        loaded.module.C_CloseSession(handle);
      } catch {
        // closing what failed
      }
    }
    releaseModule(loc.modulePath, loaded);
    throw err;
  }
  const session = handle;
  let closed = false;
  return {
    module: loaded.module,
    handle: session,
    slot: slotId ?? '?',
    close() {
      if (closed) return;
      closed = true;
      try {
        loaded.module.C_CloseSession(session);
      } catch {
        // the session is gone already (token removed): nothing to close
      }
      releaseModule(loc.modulePath, loaded);
    },
  };
}

function findObjects(s: Session, template: Template): Buffer[] {
  s.module.C_FindObjectsInit(s.handle, template);
  try {
    const found: Buffer[] = [];
    for (;;) {
      const batch = s.module.C_FindObjects(s.handle, 16);
      if (batch.length === 0) return found;
      found.push(...batch);
    }
  } finally {
    s.module.C_FindObjectsFinal(s.handle);
  }
}

const attribute = (s: Session, object: Buffer, type: number): Buffer | undefined => {
  try {
    return s.module.C_GetAttributeValue(s.handle, object, [{ type }])[0]?.value;
  } catch {
    return undefined;
  }
};

/** The CKA_LABEL of a root key pair: `<object>-<label>` (`<object>` alone when label is empty). */
export function pkcs11ObjectLabel(loc: Pkcs11Location, label: string): string {
  return label === '' ? loc.object : `${loc.object}-${label}`;
}

/** CKA_EC_POINT → the 32 raw bytes: a DER OCTET STRING (04 20 …) as PKCS#11 says, or the bare bytes. */
function rawFromEcPoint(point: Buffer | undefined): Buffer | undefined {
  if (!point) return undefined;
  if (point.length === 34 && point[0] === 0x04 && point[1] === 0x20) return Buffer.from(point.subarray(2));
  if (point.length === 32) return Buffer.from(point);
  return undefined;
}

const isEd25519Params = (params: Buffer | undefined) =>
  params !== undefined && (params.equals(ED25519_PARAMS_OID) || params.equals(ED25519_PARAMS_NAME));

function keyUnavailable(message: string): AuthorityError {
  return new AuthorityError('ROOT_KEY_UNAVAILABLE', message);
}

interface FoundKey {
  readonly privateKey: Buffer;
  readonly publicKeyRaw: Buffer;
  readonly keyId: Buffer;
}

/** The key pair labelled so (and with that key ID when given), checked to be Ed25519 and to match. */
function findKeyPair(s: Session, loc: Pkcs11Location, objectLabel: string, keyId?: Uint8Array): FoundKey {
  const where = `${tokenName(loc, s.slot)} (module ${loc.modulePath})`;
  const publics = findObjects(s, [
    { type: CKA_CLASS, value: CKO_PUBLIC_KEY },
    { type: CKA_LABEL, value: objectLabel },
  ]);
  const candidates: { object: Buffer; raw: Buffer; keyId: Buffer; id: Buffer | undefined }[] = [];
  for (const object of publics) {
    const keyType = attribute(s, object, CKA_KEY_TYPE);
    const params = attribute(s, object, CKA_EC_PARAMS);
    const raw = rawFromEcPoint(attribute(s, object, CKA_EC_POINT));
    if (
      !keyType ||
      keyType.readUIntLE(0, Math.min(keyType.length, 6)) !== CKK_EC_EDWARDS ||
      !isEd25519Params(params) ||
      !raw
    ) {
      throw keyUnavailable(
        `the key labelled "${objectLabel}" in ${where} is not an Ed25519 key: the root must be Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN with edwards25519)`,
      );
    }
    candidates.push({ object, raw, keyId: keyFingerprint(raw), id: attribute(s, object, CKA_ID) });
  }
  const wanted = keyId === undefined ? candidates : candidates.filter((c) => c.keyId.equals(Buffer.from(keyId)));
  if (wanted.length === 0) {
    throw keyUnavailable(
      `no root key labelled "${objectLabel}"${keyId !== undefined ? ` with key ID ${Buffer.from(keyId).toString('hex')}` : ''} in ${where}` +
        `${candidates.length > 0 ? ` (it holds ${candidates.map((c) => c.keyId.toString('hex')).join(', ')})` : ''}: ` +
        'the key was destroyed or is in another token; correct --signer, or restore the token from its backup',
    );
  }
  if (wanted.length > 1) {
    throw keyUnavailable(
      `${wanted.length} root keys are labelled "${objectLabel}" in ${where} (${wanted.map((c) => c.keyId.toString('hex')).join(', ')}): ` +
        'name the one to use by its key ID, or destroy the others',
    );
  }
  const pub = wanted[0]!;
  const privates = findObjects(s, [
    { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
    { type: CKA_LABEL, value: objectLabel },
    ...(pub.id && pub.id.length > 0 ? [{ type: CKA_ID, value: pub.id }] : []),
  ]);
  // The private half must sign what the public half verifies: a probe tells the right one.
  for (const privateKey of privates) {
    const signature = signWith(s, privateKey, PROBE);
    if (signature && verify(null, PROBE, publicKeyFromRaw(pub.raw), signature)) {
      return { privateKey, publicKeyRaw: pub.raw, keyId: pub.keyId };
    }
  }
  throw keyUnavailable(
    `the root key ${pub.keyId.toString('hex')} labelled "${objectLabel}" in ${where} has no private half that signs for it: ` +
      'the private key was destroyed; restore the token from its backup or rotate to a new root',
  );
}

function signWith(s: Session, privateKey: Buffer, message: Uint8Array): Buffer | undefined {
  try {
    s.module.C_SignInit(s.handle, { mechanism: CKM_EDDSA }, privateKey);
    return s.module.C_Sign(s.handle, Buffer.from(message), Buffer.alloc(64));
  } catch {
    return undefined;
  }
}

// --- the API used by root-signer.ts ----------------------------------------------------------

/**
 * Generates a root key pair in the token: token objects, the private half sensitive and not
 * extractable, labelled `<object>-<label>`, CKA_ID = the key ID. Refuses a label in use.
 */
export function createPkcs11RootKey(loc: Pkcs11Location, label: string): Pkcs11Signer {
  const objectLabel = pkcs11ObjectLabel(loc, label);
  const s = openSession(loc, true);
  try {
    if (findObjects(s, [{ type: CKA_LABEL, value: objectLabel }]).length > 0) {
      throw new AuthorityError(
        'AUTHORITY_EXISTS',
        `${tokenName(loc, s.slot)} already holds a key labelled "${objectLabel}": a root key is never replaced in place; ` +
          'open it, or destroy it first',
      );
    }
    const generate = (params: Buffer) =>
      s.module.C_GenerateKeyPair(
        s.handle,
        { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN },
        [
          { type: CKA_CLASS, value: CKO_PUBLIC_KEY },
          { type: CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
          { type: CKA_TOKEN, value: true },
          { type: CKA_PRIVATE, value: false },
          { type: CKA_VERIFY, value: true },
          { type: CKA_EC_PARAMS, value: params },
          { type: CKA_LABEL, value: objectLabel },
        ],
        [
          { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
          { type: CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
          { type: CKA_TOKEN, value: true },
          { type: CKA_PRIVATE, value: true },
          { type: CKA_SENSITIVE, value: true },
          { type: CKA_EXTRACTABLE, value: false },
          { type: CKA_SIGN, value: true },
          { type: CKA_LABEL, value: objectLabel },
        ],
      );
    let pair: { publicKey: Buffer; privateKey: Buffer };
    try {
      pair = generate(ED25519_PARAMS_OID);
    } catch (first) {
      try {
        // PKCS#11 3.0 also names the curve by a printable string; some tokens know only that.
        pair = generate(ED25519_PARAMS_NAME);
      } catch {
        throw unavailable(
          `${tokenName(loc, s.slot)} cannot generate an Ed25519 key (${ckrName(first)}): the token must support ` +
            'CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA (SoftHSM2 2.6 does)',
        );
      }
    }
    const raw = rawFromEcPoint(attribute(s, pair.publicKey, CKA_EC_POINT));
    const extractable = attribute(s, pair.privateKey, CKA_EXTRACTABLE);
    const sensitive = attribute(s, pair.privateKey, CKA_SENSITIVE);
    if (!raw || !extractable || extractable[0] !== 0 || !sensitive || sensitive[0] !== 1) {
      for (const object of [pair.publicKey, pair.privateKey]) s.module.C_DestroyObject(s.handle, object);
      throw keyUnavailable(
        `${tokenName(loc, s.slot)} made a key that is ${!raw ? 'not Ed25519' : 'exportable'}: it was destroyed; use a token that keeps keys sensitive`,
      );
    }
    const keyId = keyFingerprint(raw);
    for (const object of [pair.publicKey, pair.privateKey]) {
      try {
        s.module.C_SetAttributeValue(s.handle, object, [{ type: CKA_ID, value: keyId }]);
      } catch {
        // A token that will not take CKA_ID still finds the key by its label.
      }
    }
    // Opened while this session holds the module: it stays loaded.
    return openPkcs11RootSigner(loc, label, keyId);
  } finally {
    s.close();
  }
}

/** Opens the root key pair labelled `<object>-<label>` (with that key ID when given) for signing. */
export function openPkcs11RootSigner(loc: Pkcs11Location, label: string, keyId?: Uint8Array): Pkcs11Signer {
  const objectLabel = pkcs11ObjectLabel(loc, label);
  let session: Session | null = openSession(loc, false);
  let key: FoundKey;
  try {
    key = findKeyPair(session, loc, objectLabel, keyId);
  } catch (err) {
    session.close();
    throw err;
  }
  const publicKeyRaw = key.publicKeyRaw;
  const expected = key.keyId;
  let privateKey = key.privateKey;
  const reconnect = (): Session => {
    session?.close();
    session = null;
    const fresh = openSession(loc, false);
    try {
      privateKey = findKeyPair(fresh, loc, objectLabel, expected).privateKey;
    } catch (err) {
      fresh.close();
      throw err;
    }
    session = fresh;
    return fresh;
  };
  const signOnce = (s: Session, message: Uint8Array): Buffer => {
    s.module.C_SignInit(s.handle, { mechanism: CKM_EDDSA }, privateKey);
    return s.module.C_Sign(s.handle, Buffer.from(message), Buffer.alloc(64));
  };
  return {
    publicKeyRaw,
    keyId: expected,
    label: objectLabel,
    sign(message: Uint8Array): Buffer {
      let s = session ?? reconnect();
      try {
        return signOnce(s, message);
      } catch (err) {
        const code = codeOf(err);
        if (code === undefined || !SESSION_LOST.has(code)) {
          throw unavailable(`${tokenName(loc, s.slot)} refused to sign with the root key (${ckrName(err)})`);
        }
        // The session dropped (token re-plugged, HSM restarted): one new session, one retry.
        s = reconnect();
        try {
          return signOnce(s, message);
        } catch (again) {
          throw unavailable(`${tokenName(loc, s.slot)} refused to sign with the root key (${ckrName(again)})`);
        }
      }
    },
    close() {
      session?.close();
      session = null;
    },
  };
}

/**
 * Destroys both halves of the key pair labelled `<object>-<label>` (C_DestroyObject), the private
 * half first: a crash between the two leaves a public object that the rerun finds by listing,
 * never a private key nothing lists. With `keyId`, the public half is the one whose CKA_EC_POINT
 * has that key ID; a private half is that key's when its CKA_ID is the key ID or — a token that
 * would not take CKA_ID (createPkcs11RootKey goes on without it) — when it signs a probe its
 * public half verifies, or when it has no public half left (a retire that crashed between the
 * two) and signs for no other key under the label. A private half whose CKA_ID names another key
 * is left alone. Returns whether anything was destroyed (false: the token held neither half).
 */
export function destroyPkcs11RootKey(loc: Pkcs11Location, label: string, keyId?: Uint8Array): boolean {
  const objectLabel = pkcs11ObjectLabel(loc, label);
  const wanted = keyId === undefined ? undefined : Buffer.from(keyId);
  const s = openSession(loc, true);
  try {
    const publics = findObjects(s, [
      { type: CKA_CLASS, value: CKO_PUBLIC_KEY },
      { type: CKA_LABEL, value: objectLabel },
    ]).map((object) => ({ object, raw: rawFromEcPoint(attribute(s, object, CKA_EC_POINT)) }));
    const isOurs = (raw: Buffer | undefined) =>
      wanted === undefined || (raw !== undefined && keyFingerprint(raw).equals(wanted));
    const ours = publics.filter((p) => isOurs(p.raw));
    const others = publics.filter((p) => !isOurs(p.raw));
    const signsFor = (privateKey: Buffer, raw: Buffer | undefined) => {
      if (raw === undefined) return false;
      const signature = signWith(s, privateKey, PROBE);
      return signature !== undefined && verify(null, PROBE, publicKeyFromRaw(raw), signature);
    };
    const privates = findObjects(s, [
      { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
      { type: CKA_LABEL, value: objectLabel },
    ]).filter((privateKey) => {
      if (wanted === undefined) return true;
      const id = attribute(s, privateKey, CKA_ID);
      if (id !== undefined && id.length > 0) return id.equals(wanted);
      if (ours.some((p) => signsFor(privateKey, p.raw))) return true;
      return ours.length === 0 && !others.some((p) => signsFor(privateKey, p.raw));
    });
    for (const object of [...privates, ...ours.map((p) => p.object)]) {
      try {
        s.module.C_DestroyObject(s.handle, object);
      } catch (err) {
        throw unavailable(
          `${tokenName(loc, s.slot)} refused to destroy the key labelled "${objectLabel}" (${ckrName(err)}): destroy it with the token's own tool`,
        );
      }
    }
    return privates.length + ours.length > 0;
  } finally {
    s.close();
  }
}

/** The label after the `<object>-` prefix (or '' for `<object>` itself), or null when not under it. */
const labelUnder = (loc: Pkcs11Location, objectLabel: string): string | null =>
  objectLabel === loc.object
    ? ''
    : objectLabel.startsWith(`${loc.object}-`)
      ? objectLabel.slice(loc.object.length + 1)
      : null;

/**
 * The Ed25519 private halves under the object prefix that have no public object of their label
 * left (a retire that crashed after destroying the public half, in an earlier version that
 * destroyed it first): the label after the prefix and the CKA_ID (null when the token holds
 * none). No signer can use them (a key is opened from its public half): a retire destroys them.
 */
export function listPkcs11OrphanRootKeys(loc: Pkcs11Location): { label: string; keyId: Buffer | null }[] {
  const s = openSession(loc, false);
  try {
    const publicLabels = new Set(
      findObjects(s, [{ type: CKA_CLASS, value: CKO_PUBLIC_KEY }]).map((o) =>
        attribute(s, o, CKA_LABEL)?.toString('utf8'),
      ),
    );
    const out: { label: string; keyId: Buffer | null }[] = [];
    for (const object of findObjects(s, [
      { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
      { type: CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    ])) {
      const objectLabel = attribute(s, object, CKA_LABEL)?.toString('utf8');
      if (objectLabel === undefined || publicLabels.has(objectLabel)) continue;
      const label = labelUnder(loc, objectLabel);
      const id = attribute(s, object, CKA_ID);
      if (label !== null) out.push({ label, keyId: id !== undefined && id.length === 8 ? id : null });
    }
    return out;
  } finally {
    s.close();
  }
}

/**
 * The Ed25519 key pairs in the token whose label is `<object>` or starts with `<object>-`: the
 * label after the prefix (what createPkcs11RootKey was given) and the key ID of the public half.
 */
export function listPkcs11RootKeys(loc: Pkcs11Location): { label: string; keyId: Buffer }[] {
  const s = openSession(loc, false);
  try {
    const out: { label: string; keyId: Buffer }[] = [];
    for (const object of findObjects(s, [
      { type: CKA_CLASS, value: CKO_PUBLIC_KEY },
      { type: CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    ])) {
      const objectLabel = attribute(s, object, CKA_LABEL)?.toString('utf8');
      const raw = rawFromEcPoint(attribute(s, object, CKA_EC_POINT));
      if (objectLabel === undefined || !raw || !isEd25519Params(attribute(s, object, CKA_EC_PARAMS))) continue;
      const label = labelUnder(loc, objectLabel);
      if (label !== null) out.push({ label, keyId: keyFingerprint(raw) });
    }
    return out;
  } finally {
    s.close();
  }
}

/** What the token says about the private half: for status output and the tests of "never exported". */
export function inspectPkcs11RootKey(
  loc: Pkcs11Location,
  label: string,
): { label: string; sensitive: boolean; extractable: boolean; valueReadable: boolean } {
  const objectLabel = pkcs11ObjectLabel(loc, label);
  const s = openSession(loc, false);
  try {
    const [privateKey] = findObjects(s, [
      { type: CKA_CLASS, value: CKO_PRIVATE_KEY },
      { type: CKA_LABEL, value: objectLabel },
    ]);
    if (!privateKey) throw keyUnavailable(`no private key labelled "${objectLabel}" in ${tokenName(loc, s.slot)}`);
    const flag = (type: number) => attribute(s, privateKey, type)?.[0] === 1;
    return {
      label: objectLabel,
      sensitive: flag(CKA_SENSITIVE),
      extractable: flag(CKA_EXTRACTABLE),
      valueReadable: attribute(s, privateKey, 0x11 /* CKA_VALUE */) !== undefined,
    };
  } finally {
    s.close();
  }
}
