import { randomBytes } from 'node:crypto';

/**
 * The client-ID window of one product group: the distinct client machine IDs seen in the last
 * `windowMs` (30 days by default). The reference: "Every activation request will stay 30 days
 * in the table. When one client refreshes its activation, [its entry is renewed] (30 days
 * life). If one KMS client does not refresh its activation within 30 days, the CMID will still
 * be removed and activation count will reduce 1."
 *
 * Layout, off the JS heap so a million entries cost ~36 bytes each and nothing for the GC:
 * - slots: the 16-byte ID (4 × int32), the expiry (int32 seconds past EPOCH), and prev/next
 *   links of a list kept in expiry order; a refresh moves its slot to the tail, so with a
 *   monotonic clock expired entries are always at the head: sweeping costs O(expired),
 *   counting O(1);
 * - an open-addressing table (linear probing, tombstones) from a keyed hash of the ID to its
 *   slot. The key is random per window: client IDs come from the network and must not be
 *   able to force collisions.
 *
 * If the host's clock steps back by D, entries recorded after the step sit behind
 * later-expiring ones and may count up to D too long; the count is never too low.
 */
const EPOCH_MS = Date.UTC(2020, 0, 1);

/** An expiry in whole seconds, rounded up: an entry lives at least the full window. */
export const toWindowSeconds = (ms: number): number => Math.ceil((ms - EPOCH_MS) / 1000);
/**
 * The current time in whole seconds, rounded down: an entry expiring at second s counts until
 * the clock reaches s (rounding up here would drop entries up to a second early).
 */
export const nowWindowSeconds = (ms: number): number => Math.floor((ms - EPOCH_MS) / 1000);
export const fromWindowSeconds = (s: number): number => EPOCH_MS + s * 1000;

/** Little-endian int32 at `o` (no view object per call: this runs for every request). */
const word = (b: Uint8Array, o: number): number =>
  (b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16) | ((b[o + 3] as number) << 24);

/** HalfSipHash state, reused by every hash (the host is single-threaded; no allocation per request). */
const SIP = new Int32Array(4);

function sipRounds(n: number): void {
  const v = SIP;
  for (let i = 0; i < n; i++) {
    let v0 = v[0] as number;
    let v1 = v[1] as number;
    let v2 = v[2] as number;
    let v3 = v[3] as number;
    v0 = (v0 + v1) | 0;
    v1 = ((v1 << 5) | (v1 >>> 27)) ^ v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = ((v3 << 8) | (v3 >>> 24)) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = ((v3 << 7) | (v3 >>> 25)) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = ((v1 << 13) | (v1 >>> 19)) ^ v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v[0] = v0;
    v[1] = v1;
    v[2] = v2;
    v[3] = v3;
  }
}

function absorb(m: number): void {
  SIP[3] = (SIP[3] as number) ^ m;
  sipRounds(2);
  SIP[0] = (SIP[0] as number) ^ m;
}

const NIL = -1;
const EMPTY = -1;
const TOMBSTONE = -2;
const INITIAL_SLOTS = 1024;

export class ClientIdWindow {
  /** Entries dropped because the window was full (oldest first). */
  evictions = 0;

  #slots = INITIAL_SLOTS;
  #keys = new Int32Array(INITIAL_SLOTS * 4);
  #expiry = new Int32Array(INITIAL_SLOTS);
  #prev = new Int32Array(INITIAL_SLOTS);
  #next = new Int32Array(INITIAL_SLOTS);
  #table = new Int32Array(INITIAL_SLOTS * 2).fill(EMPTY);
  #mask = INITIAL_SLOTS * 2 - 1;
  /** Table cells holding a slot or a tombstone. */
  #occupied = 0;
  #size = 0;
  #head = NIL;
  #tail = NIL;
  #free = NIL;
  #unused = 0;
  readonly #k0 = randomBytes(4).readInt32LE(0);
  readonly #k1 = randomBytes(4).readInt32LE(0);

  /**
   * `maxEntries` bounds memory: the GVLK and group id are public, so anyone on the network can
   * send made-up client IDs. When full, the entry closest to expiry makes room.
   */
  constructor(
    readonly windowMs: number,
    readonly maxEntries = Number.POSITIVE_INFINITY,
  ) {
    if (!(windowMs > 0)) throw new RangeError(`a client-ID window must be longer than 0 ms, got ${windowMs}`);
    if (!(maxEntries === Number.POSITIVE_INFINITY || (Number.isInteger(maxEntries) && maxEntries >= 1))) {
      throw new RangeError(`a client-ID window holds at least 1 entry, got ${maxEntries}`);
    }
  }

  /** Records a request from `clientId` (16 bytes); returns the count after it. */
  record(clientId: Uint8Array, nowMs: number): number {
    this.#sweep(nowWindowSeconds(nowMs));
    this.#upsert(clientId, toWindowSeconds(nowMs + this.windowMs));
    return this.#size;
  }

  /** Restores an entry from storage; restore in expiry order to keep the list ordered. */
  restore(clientId: Uint8Array, expiresSeconds: number): void {
    this.#upsert(clientId, expiresSeconds);
  }

  /** Whether `clientId` is in the window at `nowMs` (expired entries are swept first). */
  has(clientId: Uint8Array, nowMs: number): boolean {
    this.#sweep(nowWindowSeconds(nowMs));
    return this.#find(clientId) >= 0;
  }

  count(nowMs: number): number {
    this.#sweep(nowWindowSeconds(nowMs));
    return this.#size;
  }

  expiryOf(clientId: Uint8Array): number | undefined {
    const cell = this.#find(clientId);
    if (cell < 0) return undefined;
    return fromWindowSeconds(this.#expiry[this.#table[cell] as number] as number);
  }

  #upsert(clientId: Uint8Array, expires: number): void {
    const cell = this.#find(clientId);
    if (cell >= 0) {
      const slot = this.#table[cell] as number;
      this.#unlink(slot);
      this.#expiry[slot] = expires;
      this.#append(slot);
      return;
    }
    if (this.#size >= this.maxEntries) {
      this.#remove(this.#head);
      this.evictions++;
    }
    const slot = this.#allocate();
    const k = slot * 4;
    this.#keys[k] = word(clientId, 0);
    this.#keys[k + 1] = word(clientId, 4);
    this.#keys[k + 2] = word(clientId, 8);
    this.#keys[k + 3] = word(clientId, 12);
    this.#expiry[slot] = expires;
    this.#append(slot);
    this.#insert(slot);
    this.#size++;
  }

  #sweep(now: number): void {
    while (this.#head !== NIL && (this.#expiry[this.#head] as number) <= now) this.#remove(this.#head);
  }

  /**
   * A keyed ARX hash with HalfSipHash-2-4's structure (two rounds per word, four to finish)
   * over the four words: without the 64-bit key, nobody can choose IDs that collide.
   */
  #hash(w0: number, w1: number, w2: number, w3: number): number {
    const v = SIP;
    v[0] = this.#k0;
    v[1] = this.#k1;
    v[2] = 0x6c796765 ^ this.#k0;
    v[3] = 0x74656462 ^ this.#k1;
    absorb(w0);
    absorb(w1);
    absorb(w2);
    absorb(w3);
    absorb(16 << 24); // the length, as HalfSipHash ends its message
    v[2] = v[2] ^ 0xff;
    sipRounds(4);
    return (v[1] ^ v[3]) & this.#mask;
  }

  /** The table cell holding `clientId`, or -1. */
  #find(clientId: Uint8Array): number {
    const w0 = word(clientId, 0);
    const w1 = word(clientId, 4);
    const w2 = word(clientId, 8);
    const w3 = word(clientId, 12);
    const keys = this.#keys;
    for (let cell = this.#hash(w0, w1, w2, w3); ; cell = (cell + 1) & this.#mask) {
      const slot = this.#table[cell] as number;
      if (slot === EMPTY) return -1;
      if (slot === TOMBSTONE) continue;
      const k = slot * 4;
      if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) return cell;
    }
  }

  #insert(slot: number): void {
    const k = slot * 4;
    const keys = this.#keys;
    let cell = this.#hash(keys[k] as number, keys[k + 1] as number, keys[k + 2] as number, keys[k + 3] as number);
    while ((this.#table[cell] as number) >= 0) cell = (cell + 1) & this.#mask;
    if (this.#table[cell] === EMPTY) this.#occupied++;
    this.#table[cell] = slot;
    // Keep probes short: rebuild when live cells and tombstones fill three quarters.
    if (this.#occupied * 4 > this.#table.length * 3) this.#rebuildTable(this.#table.length);
  }

  #remove(slot: number): void {
    const k = slot * 4;
    const keys = this.#keys;
    let cell = this.#hash(keys[k] as number, keys[k + 1] as number, keys[k + 2] as number, keys[k + 3] as number);
    while (this.#table[cell] !== slot) cell = (cell + 1) & this.#mask;
    this.#table[cell] = TOMBSTONE;
    this.#unlink(slot);
    this.#next[slot] = this.#free;
    this.#free = slot;
    this.#size--;
  }

  #allocate(): number {
    if (this.#free !== NIL) {
      const slot = this.#free;
      this.#free = this.#next[slot] as number;
      return slot;
    }
    if (this.#unused === this.#slots) this.#grow();
    return this.#unused++;
  }

  #grow(): void {
    const slots = this.#slots * 2;
    const copy = (from: Int32Array, length: number) => {
      const to = new Int32Array(length);
      to.set(from);
      return to;
    };
    this.#keys = copy(this.#keys, slots * 4);
    this.#expiry = copy(this.#expiry, slots);
    this.#prev = copy(this.#prev, slots);
    this.#next = copy(this.#next, slots);
    this.#slots = slots;
    this.#rebuildTable(slots * 2);
  }

  #rebuildTable(length: number): void {
    this.#table = new Int32Array(length).fill(EMPTY);
    this.#mask = length - 1;
    this.#occupied = 0;
    for (let slot = this.#head; slot !== NIL; slot = this.#next[slot] as number) this.#insert(slot);
  }

  #append(slot: number): void {
    this.#prev[slot] = this.#tail;
    this.#next[slot] = NIL;
    if (this.#tail === NIL) this.#head = slot;
    else this.#next[this.#tail] = slot;
    this.#tail = slot;
  }

  #unlink(slot: number): void {
    const prev = this.#prev[slot] as number;
    const next = this.#next[slot] as number;
    if (prev === NIL) this.#head = next;
    else this.#next[prev] = next;
    if (next === NIL) this.#tail = prev;
    else this.#prev[next] = prev;
  }
}
