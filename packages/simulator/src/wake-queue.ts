/**
 * The event queue of the simulation: each client has at most one pending wake-up (its next
 * attempt or the end of its current licence state, as `Licence.startSchedule` wakes), so the
 * queue is a binary heap of client indices over typed arrays, with a position index for
 * updates. Ties break by client index: a run is deterministic.
 */
export class WakeQueue {
  readonly #time: Float64Array;
  readonly #heap: Int32Array;
  readonly #pos: Int32Array;
  #size = 0;

  constructor(capacity: number) {
    this.#time = new Float64Array(capacity);
    this.#heap = new Int32Array(capacity);
    this.#pos = new Int32Array(capacity).fill(-1);
  }

  get size(): number {
    return this.#size;
  }

  has(id: number): boolean {
    return (this.#pos[id] as number) >= 0;
  }

  /** Schedules `id` at `time`, moving it when it is already queued. */
  set(id: number, time: number): void {
    const at = this.#pos[id] as number;
    this.#time[id] = time;
    if (at < 0) {
      const i = this.#size++;
      this.#heap[i] = id;
      this.#pos[id] = i;
      this.#up(i);
    } else {
      this.#up(at);
      this.#down(this.#pos[id] as number);
    }
  }

  /** The earliest time queued, or Infinity. */
  peekTime(): number {
    return this.#size === 0 ? Infinity : (this.#time[this.#heap[0] as number] as number);
  }

  /** Removes and returns the earliest client; call only when `size > 0`. */
  pop(): number {
    const top = this.#heap[0] as number;
    const last = this.#heap[--this.#size] as number;
    this.#pos[top] = -1;
    if (this.#size > 0) {
      this.#heap[0] = last;
      this.#pos[last] = 0;
      this.#down(0);
    }
    return top;
  }

  timeOf(id: number): number {
    return this.#time[id] as number;
  }

  #less(a: number, b: number): boolean {
    const ta = this.#time[a] as number;
    const tb = this.#time[b] as number;
    return ta < tb || (ta === tb && a < b);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const id = heap[i] as number;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as number;
      if (!this.#less(id, p)) break;
      heap[i] = p;
      this.#pos[p] = i;
      i = parent;
    }
    heap[i] = id;
    this.#pos[id] = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const id = heap[i] as number;
    const n = this.#size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && this.#less(heap[r] as number, heap[l] as number)) child = r;
      const c = heap[child] as number;
      if (!this.#less(c, id)) break;
      heap[i] = c;
      this.#pos[c] = i;
      i = child;
    }
    heap[i] = id;
    this.#pos[id] = i;
  }
}
