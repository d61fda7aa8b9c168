import { describe, expect, it } from 'vitest';
import { InstallationQueue } from './installation-queue.js';
import type { AuthorityStore, InstallationOutcome, InstallationRequest } from './store.js';

/** A store whose batches stay in the database until the test ends them. */
function fakeStore(inFlight?: number) {
  const batches: { requests: readonly InstallationRequest[]; end: (err?: Error) => void }[] = [];
  const store = {
    ...(inFlight === undefined ? {} : { installationBatchesInFlight: inFlight }),
    activateInstallations: (requests: readonly InstallationRequest[]) =>
      new Promise<InstallationOutcome[]>((resolve, reject) => {
        batches.push({
          requests,
          end: (err) =>
            err ? reject(err) : resolve(requests.map((_, i) => ({ outcome: 'new', used: i + 1, limit: 99 }))),
        });
      }),
  } as unknown as AuthorityStore;
  return { store, batches };
}

const req = (keyId: string, hw: string): InstallationRequest => ({
  keyId,
  keyLast5: '…ABCDE',
  hardwareRef: hw,
  installationId: `iid-${hw}`,
  channel: 'online',
  at: 1,
});
const turn = () => new Promise((r) => setImmediate(r));

describe('installation queue', () => {
  it('sends the requests of one turn as one batch, and those that came meanwhile as the next (one at a time by default)', async () => {
    const { store, batches } = fakeStore();
    const q = new InstallationQueue(store);
    const first = [q.decide(req('a', '1')), q.decide(req('b', '2'))];
    await turn();
    expect(batches.map((b) => b.requests.length)).toEqual([2]);
    const later = Array.from({ length: 20 }, (_, i) => q.decide(req(`k${i}`, `h${i}`)));
    await turn();
    expect(batches.length).toBe(1); // SQLite: one batch in the database at a time
    batches[0]!.end();
    expect((await Promise.all(first)).map((o) => o.used)).toEqual([1, 2]);
    await turn();
    expect(batches.map((b) => b.requests.length)).toEqual([2, 20]);
    batches[1]!.end();
    expect((await Promise.all(later)).length).toBe(20);
  });

  it('overlaps a second batch only with 16 waiting, and never with a key the first holds (its requests stay in order)', async () => {
    const { store, batches } = fakeStore(2);
    const q = new InstallationQueue(store);
    const hot = [q.decide(req('hot', '1'))];
    await turn();
    expect(batches.length).toBe(1);
    // A few waiting: no second batch yet.
    const few = Array.from({ length: 5 }, (_, i) => q.decide(req(`k${i}`, `h${i}`)));
    await turn();
    expect(batches.length).toBe(1);
    // 16 waiting, three of them of the key in flight: a second batch without those three.
    hot.push(q.decide(req('hot', '2')), q.decide(req('hot', '3')));
    const more = Array.from({ length: 8 }, (_, i) => q.decide(req(`m${i}`, `h${i}`)));
    hot.push(q.decide(req('hot', '4')));
    await turn();
    expect(batches.length).toBe(2);
    expect(batches[1]!.requests.map((r) => r.keyId)).toEqual([
      ...few.map((_, i) => `k${i}`),
      ...more.map((_, i) => `m${i}`),
    ]);
    // The hot key's batch ends: its three requests wait for the other batch (under 16 waiting),
    // then go together, in their order.
    batches[0]!.end();
    await hot[0];
    await turn();
    expect(batches.length).toBe(2);
    batches[1]!.end();
    await Promise.all([...few, ...more]);
    await turn();
    expect(batches[2]!.requests.map((r) => `${r.keyId}:${r.hardwareRef}`)).toEqual(['hot:2', 'hot:3', 'hot:4']);
    batches[2]!.end();
    await Promise.all([...hot, ...few, ...more]);
  });

  it('a failed batch rejects its own requests only; the queue goes on', async () => {
    const { store, batches } = fakeStore();
    const q = new InstallationQueue(store);
    const failed = q.decide(req('a', '1'));
    await turn();
    const next = q.decide(req('a', '2'));
    batches[0]!.end(new Error('database gone'));
    await expect(failed).rejects.toThrow('database gone');
    await turn();
    batches[1]!.end();
    await expect(next).resolves.toMatchObject({ outcome: 'new' });
  });
});
