import type { Command } from 'commander';
import { AuthorityError, CLI_PRINCIPAL, type RaiseRequest, type RaiseRequestState } from '@volact/authority';
import { CliError, printJson } from '../output.js';
import { parseIntOption } from '../options.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type TargetOptions } from './authority-target.js';

/**
 * `volact authority raise-request list|create|approve|decline`: an organisation's requests for
 * more activations on a key, decided by the publisher (docs/portal.md "Limit-raise requests").
 * On the data directory the CLI acts as the publisher owner `cli`; with --url, as the token's holder.
 */

const STATES: readonly RaiseRequestState[] = ['pending', 'approved', 'declined'];
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  keyId: '--key',
  additional: '--additional',
  reason: '--reason',
  orgId: '--org',
  state: '--state',
};

/** A refusal about a field names this command's flag for it. */
async function withFlags<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const flag = err instanceof AuthorityError && err.field !== undefined ? FLAG_OF_FIELD[err.field] : undefined;
    if (flag === undefined || (err as AuthorityError).message.startsWith('--')) throw err;
    throw new AuthorityError((err as AuthorityError).code, `${flag}: ${(err as AuthorityError).message}`);
  }
}

function describe(r: RaiseRequest): string {
  const head = `${r.id}\t${r.state}\t${r.orgId}\tkey ${r.keyLast5} (${r.keyId})\t+${r.additional}\tby ${r.requestedBy} at ${r.requestedAt}\t"${r.reason}"`;
  if (r.state === 'pending') return head;
  const limits = r.state === 'approved' ? `, limit ${r.limitBefore} → ${r.limitAfter}` : '';
  return `${head}\t${r.state} by ${r.decidedBy} at ${r.decidedAt}${limits}: "${r.decisionReason}"`;
}

export function registerAuthorityRaise(authority: Command, run: Run): void {
  const raise = authority
    .command('raise-request')
    .description("organisations' requests for more activations on a key, approved or declined by the publisher");

  targetOptions(raise.command('list').description('limit-raise requests, newest first'))
    .option('--org <id>', 'only this organisation (org_…)')
    .option('--state <state>', `only requests in this state: ${STATES.join(', ')}`)
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { org?: string; state?: string; json?: boolean }) => {
        if (o.state !== undefined && !STATES.includes(o.state as RaiseRequestState)) {
          throw new CliError('OPTION_INVALID', `--state must be one of ${STATES.join(', ')}, got "${o.state}"`);
        }
        const a = openAuthority(o);
        try {
          const items: RaiseRequest[] = [];
          let cursor: string | undefined;
          do {
            const page = await withFlags(() =>
              a.raiseRequests.list({
                limit: 500,
                ...(o.org !== undefined ? { orgId: o.org } : {}),
                ...(o.state !== undefined ? { state: o.state as RaiseRequestState } : {}),
                ...(cursor !== undefined ? { cursor } : {}),
              }),
            );
            items.push(...page.items);
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          if (o.json) printJson({ requests: items });
          else if (items.length === 0) console.log('no limit-raise requests');
          else for (const r of items) console.log(describe(r));
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(raise.command('create').description("ask for more activations on an organisation's key"))
    .requiredOption('--org <id>', 'the organisation that owns the key (org_…)')
    .requiredOption('--key <keyId>', 'the key ID (as `key list` shows it)')
    .requiredOption('--additional <n>', 'activations to add to the limit (1-1000000)')
    .requiredOption('--reason <text>', 'why (1-500 characters)')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: TargetOptions & { org: string; key: string; additional: string; reason: string; json?: boolean }) => {
          const additional = parseIntOption(o.additional, '--additional', 1, 1_000_000);
          const a = openAuthority(o);
          try {
            const r = await withFlags(() =>
              a.raiseRequests.create(o.org, { keyId: o.key, additional, reason: o.reason }, CLI_PRINCIPAL),
            );
            if (o.json) printJson(r);
            else console.log(`limit-raise request ${r.id}: +${r.additional} on key ${r.keyLast5}, pending`);
          } finally {
            await a.close();
          }
        },
      ),
    );

  for (const decision of ['approve', 'decline'] as const) {
    targetOptions(
      raise
        .command(decision)
        .description(
          decision === 'approve'
            ? "approve a pending request: the key's limit rises by the activations asked for, once"
            : 'decline a pending request (the limit stays)',
        )
        .argument('<id>', 'the request id (rr_…)'),
    )
      .requiredOption('--reason <text>', 'why (1-500 characters; the organisation sees it)')
      .option('--json', 'print JSON')
      .action(
        run(async (o: TargetOptions & { reason: string; json?: boolean }, id: string) => {
          const a = openAuthority(o);
          try {
            const r = await withFlags(() => a.raiseRequests.decide(id, { decision, reason: o.reason }, CLI_PRINCIPAL));
            if (o.json) printJson(r);
            else if (r.state === 'approved')
              console.log(`request ${r.id} approved: key ${r.keyLast5} limit ${r.limitBefore} → ${r.limitAfter}`);
            else console.log(`request ${r.id} declined: key ${r.keyLast5} limit unchanged`);
          } finally {
            await a.close();
          }
        }),
      );
  }
}
