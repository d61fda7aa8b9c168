import { describe, expect, it } from 'vitest';
import { DAY, defaultPolicy } from '@volact/core';
import { deriveState } from './licence-state.js';
import type { LicenceRecord } from './licence-store.js';

const T0 = Date.UTC(2026, 0, 1);

function record(overrides: Partial<LicenceRecord> = {}): LicenceRecord {
  return {
    format: 'volact-client/2',
    productRef: {
      path: null,
      sha256: '0'.repeat(64),
      groupId: '00000000-0000-0000-0000-000000000001',
      groupName: 'office14',
    },
    product: {
      format: 'volact-product-config/1',
      authority: { rootPublicKey: Buffer.alloc(32).toString('base64') },
      group: { id: '00000000-0000-0000-0000-000000000001', name: 'office14', kind: 'app', threshold: 5 },
      gvlk: 'unused-here',
      policy: defaultPolicy(),
    },
    clientMachineId: '00000000-0000-0000-0000-000000000002',
    hardwareId: 'hw',
    installedAt: T0,
    installedKey: { type: 'gvlk', text: 'unused-here' },
    kmsHost: null,
    activation: null,
    intervals: { activationMs: 2 * 3600_000, renewalMs: 7 * DAY },
    discovery: { domains: [], dnsServer: null, caching: true, cached: null },
    directory: null,
    lastAttempt: null,
    nextAttemptAt: T0,
    nonGenuineSince: null,
    lastReportedState: null,
    crls: {},
    revoked: {},
    actType: 'any',
    trust: { transitions: [], delegations: [], revocationList: null },
    ...overrides,
  };
}

const activation = { method: 'kms' as const, evidence: 'x', host: 'h:1688', receivedAt: T0 };

describe('licence-state table', () => {
  it('walks initial grace → notification when never activated', () => {
    expect(deriveState(record(), T0 + 30 * DAY - 1, null, true)).toMatchObject({
      state: 'initial-grace',
      stateEndsAt: T0 + 30 * DAY,
    });
    expect(deriveState(record(), T0 + 30 * DAY, null, true).state).toBe('notification');
  });

  it('walks licensed (180 d) → out-of-tolerance (30 d) → notification after an activation', () => {
    const r = record({ activation });
    expect(deriveState(r, T0 + 180 * DAY - 1, T0, true)).toMatchObject({
      state: 'licensed',
      stateEndsAt: T0 + 180 * DAY,
    });
    expect(deriveState(r, T0 + 180 * DAY, T0, true)).toMatchObject({
      state: 'out-of-tolerance',
      stateEndsAt: T0 + 210 * DAY,
    });
    expect(deriveState(r, T0 + 210 * DAY, T0, true).state).toBe('notification');
  });

  it('is unlicensed without a key, and non-genuine for 30 days when the evidence does not verify', () => {
    expect(deriveState(record({ installedKey: null }), T0, null, true).state).toBe('unlicensed');
    const tampered = record({ activation, nonGenuineSince: T0 });
    expect(deriveState(tampered, T0 + 30 * DAY - 1, null, false).state).toBe('non-genuine-grace');
    expect(deriveState(tampered, T0 + 30 * DAY, null, false).state).toBe('notification');
  });
});
