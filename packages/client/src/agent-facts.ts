import * as os from 'node:os';
import type { AgentStatusReply, Clock } from '@volact/core';

/** The machine as people know it, as GET /v1/status answers it (`machine`). */
export type AgentMachineFacts = NonNullable<AgentStatusReply['machine']>;

/** What the agent may be told instead of reading it from the host (tests; `client agent --host-name`). */
export interface AgentFactsOverrides {
  readonly hostName?: string;
  readonly productVersion?: string | null;
}

/** The longest texts the console takes (core's agentStatusSchema); longer ones are cut. */
const LIMITS = { hostName: 253, os: 64, osVersion: 256, productVersion: 64 } as const;

const bounded = (text: string, max: number) => text.trim().slice(0, max);

/** The agent's host name given by an operator: a DNS-like name, 1–253 characters, no spaces or controls. */
export function checkHostName(name: string): string {
  if (name.length < 1 || name.length > LIMITS.hostName || !/^[^\s\p{Cc}]+$/u.test(name)) {
    throw new RangeError(
      `the agent's host name must be 1 to ${LIMITS.hostName} characters without spaces (e.g. pc-0042.example.org)`,
    );
  }
  return name;
}

/**
 * Reads this host's facts once, when the agent starts: the host name, the OS type and its
 * release + version text, and the boot time (now − uptime, to the second, so that it does not
 * move from one status to the next). The product version is the caller's (the product config
 * has none today: null).
 */
export function readMachineFacts(clock: Clock, overrides: AgentFactsOverrides = {}): AgentMachineFacts {
  const safe = <T>(read: () => T, fallback: T): T => {
    try {
      return read();
    } catch {
      return fallback;
    }
  };
  const uptime = safe(() => os.uptime(), NaN);
  const bootMs = Math.round((clock.now() - uptime * 1000) / 1000) * 1000;
  const release = safe(() => os.release(), '');
  const version = safe(() => os.version(), '');
  return {
    hostName: bounded(
      overrides.hostName !== undefined ? checkHostName(overrides.hostName) : safe(() => os.hostname(), ''),
      LIMITS.hostName,
    ),
    os: bounded(
      safe(() => os.type(), ''),
      LIMITS.os,
    ),
    osVersion: bounded(`${release} ${version}`, LIMITS.osVersion),
    productVersion:
      overrides.productVersion === undefined || overrides.productVersion === null
        ? null
        : bounded(overrides.productVersion, LIMITS.productVersion),
    lastBootAt: Number.isFinite(bootMs) && uptime > 0 ? new Date(bootMs).toISOString() : null,
  };
}
