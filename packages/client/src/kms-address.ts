import { KMS_DEFAULTS } from '@volact/core';
import { ClientError } from './errors.js';

export interface KmsAddress {
  readonly host: string;
  readonly port: number;
}

/** Parses HOST, HOST:PORT, [IPv6] or [IPv6]:PORT; the port defaults to 1688 (or `defaultPort`). */
export function parseKmsAddress(text: string, defaultPort: number = KMS_DEFAULTS.port): KmsAddress {
  const t = text.trim();
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(t);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2];
  } else {
    const m = /^([A-Za-z0-9.-]{1,253})(?::(\d+))?$/.exec(t);
    if (!m)
      throw new ClientError(
        'HOST_ADDRESS_INVALID',
        `"${t.slice(0, 80)}" is not HOST[:PORT] (e.g. kms.corp.example:1688 or [::1]:1688)`,
      );
    host = m[1] as string;
    portText = m[2];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ClientError('HOST_ADDRESS_INVALID', `port ${portText} is not a TCP port (1-65535)`);
  }
  return { host, port };
}

export function formatKmsAddress(a: KmsAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
