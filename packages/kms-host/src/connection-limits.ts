import { isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { KmsHostError } from './errors.js';

/**
 * How many connections the KMS port holds, and for how long. The defaults keep a slowloris
 * flood (thousands of connections trickling a byte every few seconds) from filling the host:
 * a source holds at most `maxConnectionsPerSource`, a request must arrive whole within its
 * deadlines whatever the byte rate, and the last tenth of `maxConnections` is kept for
 * sources that hold few connections.
 */
export interface ConnectionLimits {
  /** Open connections at most, all sources together. */
  readonly maxConnections: number;
  /** Open connections at most from one source (an IPv4 address, or the /64 of an IPv6 one). */
  readonly maxConnectionsPerSource: number;
  /** A new connection must have sent a frame's 4-byte length prefix within this (ms). */
  readonly headerDeadlineMs: number;
  /** A frame must be complete this long (ms) after its first byte arrived. */
  readonly frameDeadlineMs: number;
  /** A connection with no frame in progress is closed after this long without a byte (ms). */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 10_000,
  maxConnectionsPerSource: 64,
  headerDeadlineMs: 5_000,
  frameDeadlineMs: 5_000,
  idleTimeoutMs: 30_000,
};

const BOUNDS: Record<keyof ConnectionLimits, [number, number]> = {
  maxConnections: [1, 1_000_000],
  // One address cannot hold more connections to one port than it has source ports; the table
  // keeps a bucket per possible size, so an unbounded value would cost memory for nothing.
  maxConnectionsPerSource: [1, 65_535],
  headerDeadlineMs: [10, 600_000],
  frameDeadlineMs: [10, 600_000],
  idleTimeoutMs: [10, 86_400_000],
};

/** The defaults with `given` applied; a value out of range is refused (HOST_CONFIG_INVALID). */
export function connectionLimits(given: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const out = { ...DEFAULT_CONNECTION_LIMITS };
  for (const key of Object.keys(BOUNDS) as (keyof ConnectionLimits)[]) {
    const value = given[key];
    if (value === undefined) continue;
    const [min, max] = BOUNDS[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new KmsHostError(
        'HOST_CONFIG_INVALID',
        `${key} must be a whole number from ${min} to ${max}, got ${value}`,
      );
    }
    out[key] = value;
  }
  if (out.maxConnectionsPerSource > out.maxConnections) out.maxConnectionsPerSource = out.maxConnections;
  return out;
}

/**
 * The key connections are counted under. IPv4 (also IPv4-mapped IPv6) by address; IPv6 by
 * its /64, since one machine usually holds a whole /64 and could otherwise use a fresh
 * address per connection.
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined) return '?';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = Array.from({ length: 8 - left.length - right.length }, () => '0');
  const groups = address.includes('::') ? [...left, ...zeros, ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export class Source {
  /** Its open connections, oldest first. */
  readonly connections = new Set<Connection>();
  constructor(readonly key: string) {}
}

/** What the server keeps per connection (deadlines in performance.now() milliseconds; 0 = none). */
export class Connection {
  /** When the first length prefix is due; 0 once 4 bytes have arrived. */
  prefixDue = 0;
  /** When the frame in progress is due; 0 when no frame is in progress. */
  frameDue = 0;
  /** Bytes received, counted only until the first length prefix is in. */
  received = 0;
  /** Time of the last byte, from the table's coarse clock (idle timeout). */
  lastActive = 0;
  released = false;
  constructor(
    readonly socket: Socket,
    readonly source: Source,
  ) {}
}

export type Admission =
  | { readonly admitted: true; readonly connection: Connection; readonly evicted: Connection | undefined }
  | { readonly admitted: false; readonly reason: 'per-source' | 'reserve' | 'full' };

export interface ConnectionCounters {
  open: number;
  sources: number;
  refusedPerSource: number;
  refusedReserve: number;
  refusedFull: number;
  evicted: number;
  closedByDeadline: number;
  closedIdle: number;
}

/**
 * Open connections by source, and the admission rule:
 * 1. a source holding `maxConnectionsPerSource` gets no more;
 * 2. once the total reaches the reserve (the last tenth of `maxConnections`), a source that
 *    already holds `busy` (an eighth of the per-source cap) gets no more: the rest is for
 *    sources not yet seen or holding few;
 * 3. at `maxConnections`, a newcomer takes the oldest connection of the source holding the most,
 *    if that source holds more than the newcomer's would after it; otherwise it is refused.
 * Sources are kept in buckets by how many connections they hold, so rule 3 finds the largest
 * in at most `maxConnectionsPerSource` steps.
 */
export class ConnectionTable {
  readonly #sources = new Map<string, Source>();
  readonly #bySize: Set<Source>[];
  readonly #reserveFrom: number;
  readonly #busy: number;
  readonly counters: ConnectionCounters = {
    open: 0,
    sources: 0,
    refusedPerSource: 0,
    refusedReserve: 0,
    refusedFull: 0,
    evicted: 0,
    closedByDeadline: 0,
    closedIdle: 0,
  };

  constructor(readonly limits: ConnectionLimits) {
    this.#bySize = Array.from({ length: limits.maxConnectionsPerSource + 1 }, () => new Set<Source>());
    this.#reserveFrom = limits.maxConnections - Math.floor(limits.maxConnections / 10);
    this.#busy = Math.max(1, Math.floor(limits.maxConnectionsPerSource / 8));
  }

  get open(): number {
    return this.counters.open;
  }

  admit(socket: Socket): Admission {
    const key = sourceKey(socket.remoteAddress);
    const source = this.#sources.get(key);
    const held = source?.connections.size ?? 0;
    const c = this.counters;
    if (held >= this.limits.maxConnectionsPerSource) {
      c.refusedPerSource++;
      return { admitted: false, reason: 'per-source' };
    }
    if (c.open >= this.#reserveFrom && held >= this.#busy) {
      c.refusedReserve++;
      return { admitted: false, reason: 'reserve' };
    }
    let evicted: Connection | undefined;
    if (c.open >= this.limits.maxConnections) {
      const heaviest = this.#heaviest();
      if (!heaviest || heaviest.connections.size <= held + 1) {
        c.refusedFull++;
        return { admitted: false, reason: 'full' };
      }
      for (const oldest of heaviest.connections) {
        evicted = oldest;
        break;
      }
      if (evicted) this.release(evicted);
      c.evicted++;
    }
    const s = source ?? this.#addSource(key);
    const connection = new Connection(socket, s);
    this.#resize(s, () => s.connections.add(connection));
    c.open++;
    return { admitted: true, connection, evicted };
  }

  /** Forgets a connection (idempotent): at its close, or when it is evicted. */
  release(connection: Connection): void {
    if (connection.released) return;
    connection.released = true;
    const s = connection.source;
    this.#resize(s, () => s.connections.delete(connection));
    this.counters.open--;
    if (s.connections.size === 0) {
      this.#sources.delete(s.key);
      this.#bySize[0]!.delete(s);
      this.counters.sources--;
    }
  }

  /** Every open connection (a snapshot: the caller may release while iterating). */
  connections(): Connection[] {
    const out: Connection[] = [];
    for (const s of this.#sources.values()) for (const c of s.connections) out.push(c);
    return out;
  }

  /** The most connections one source holds. */
  largestSource(): number {
    return this.#heaviest()?.connections.size ?? 0;
  }

  #addSource(key: string): Source {
    const s = new Source(key);
    this.#sources.set(key, s);
    this.#bySize[0]!.add(s);
    this.counters.sources++;
    return s;
  }

  #resize(s: Source, change: () => void): void {
    this.#bySize[s.connections.size]!.delete(s);
    change();
    this.#bySize[s.connections.size]!.add(s);
  }

  #heaviest(): Source | undefined {
    for (let n = this.limits.maxConnectionsPerSource; n > 0; n--) {
      const bucket = this.#bySize[n]!;
      if (bucket.size > 0) return bucket.values().next().value;
    }
    return undefined;
  }
}
