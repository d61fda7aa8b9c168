import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { RevocationResult } from '@volact/authority';
import { writeFileAtomic } from '@volact/core';
import { printJson } from '../output.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type AuthorityTarget, type TargetOptions } from './authority-target.js';

/**
 * `volact authority revoke-host|revoke-manufacturer|revoke-token-ca|revocations`: the revocation
 * list (docs/authority.md "Revocation", docs/trust.md "Revocation").
 */
export function registerAuthorityRevocation(authority: Command, run: Run): void {
  const actor = () => {
    try {
      return `cli:${userInfo().username}`;
    } catch {
      return 'cli';
    }
  };
  const describe = (r: RevocationResult) => {
    const what = { host: 'host key', manufacturer: 'OEM manufacturer key', tokenCa: 'token CA key' }[r.kind];
    const lines = r.subjects.map((s) => {
      const host = s.hostKeyId ? ` (KMS host key ${s.hostKeyId}, host ${s.hostRecord ?? '?'})` : '';
      return `${what} ${s.subject}${host}: ${s.alreadyRevoked ? 'already revoked' : 'revoked'}`;
    });
    lines.push(
      r.alreadyRevoked
        ? `already revoked: nothing changed, revocation list version ${r.listVersion} stays (next update ${r.nextUpdate})`
        : `revocation list version ${r.listVersion} issued ${r.issuedAt}, next update ${r.nextUpdate}`,
    );
    const k = r.kmsHostKey;
    if (k?.keyRevoked) {
      lines.push(`KMS host key ${k.keyId} is revoked: it activates no new host`);
    } else if (k) {
      lines.push(
        `KMS host key ${k.keyId} is NOT revoked: the hosts it activated are listed, but whoever holds the key can activate a new host key pair with it; to stop that run: ${k.stopNewActivations ?? ''}`,
      );
    }
    return lines.join('\n');
  };
  const revoke = (
    name: string,
    argument: string,
    description: string,
    act: (
      a: AuthorityTarget,
      subject: string,
      reason: string | undefined,
      alsoRevokeKey: boolean,
    ) => Promise<RevocationResult>,
    extra: (command: Command) => Command = (command) => command,
  ) =>
    extra(
      targetOptions(authority.command(name).description(description).argument(argument)).option(
        '--reason <text>',
        'why (kept with the entry and in the audit log; 1-200 printable characters)',
      ),
    )
      .option('--json', 'print JSON')
      .action(
        run(
          async (o: TargetOptions & { reason?: string; json?: boolean; alsoRevokeKey?: boolean }, subject: string) => {
            const a = openAuthority(o);
            try {
              const result = await act(a, subject, o.reason, o.alsoRevokeKey === true);
              if (o.json) printJson(result);
              else console.log(describe(result));
            } finally {
              await a.close();
            }
          },
        ),
      );

  revoke(
    'revoke-host',
    '<host>',
    'revoke a KMS host key pair: by KMS host key ID (every host it activated), host certificate serial, host record (hw:…) or host key reference; no renewal, no status',
    (a, subject, reason, alsoRevokeKey) =>
      a.revokeHost(subject, {
        actor: actor(),
        ...(reason === undefined ? {} : { reason }),
        ...(alsoRevokeKey ? { alsoRevokeKey } : {}),
      }),
    (command) =>
      command.option(
        '--also-revoke-key',
        'with a KMS host key ID: revoke the key too (as `authority key revoke`), so it activates no new host key pair',
      ),
  );
  revoke(
    'revoke-manufacturer',
    '<key-id>',
    "revoke an OEM manufacturer's key by its key ID (16 hex digits): its markers are no longer accepted",
    (a, subject, reason) =>
      a.revokeManufacturer(subject, { actor: actor(), ...(reason === undefined ? {} : { reason }) }),
  );
  revoke(
    'revoke-token-ca',
    '<key-id>',
    "revoke an organisation's token CA by its key ID (16 hex digits): its tokens are no longer accepted",
    (a, subject, reason) => a.revokeTokenCa(subject, { actor: actor(), ...(reason === undefined ? {} : { reason }) }),
  );

  targetOptions(
    authority
      .command('revocations')
      .description(
        'the current revocation list: version, issue time, next update, entries; --out writes the signed list',
      ),
  )
    .option('--out <file>', 'write the signed list (binary) for `client install-revocations` and isolated hosts')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { out?: string; json?: boolean }) => {
        const a = openAuthority(o);
        try {
          const report = await a.revocationList();
          if (o.out !== undefined) {
            writeFileAtomic(o.out, report.encoded, { mode: 0o644 });
          }
          const { encoded, ...shown } = report;
          if (o.json) {
            printJson({ ...shown, list: encoded.toString('base64'), ...(o.out === undefined ? {} : { out: o.out }) });
            return;
          }
          console.log(
            `revocation list version ${report.listVersion}, issued ${report.issuedAt}, next update ${report.nextUpdate}, signed by root ${report.issuerKeyId}`,
          );
          console.log(`${report.entries.length} entr${report.entries.length === 1 ? 'y' : 'ies'}`);
          for (const e of report.entries) {
            console.log(`  ${e.kind}\t${e.subject}\trevoked ${e.revokedAt}${e.reason ? `\t${e.reason}` : ''}`);
          }
          if (o.out !== undefined) console.log(`signed list written to ${o.out} (${encoded.length} bytes)`);
        } finally {
          await a.close();
        }
      }),
    );
}
