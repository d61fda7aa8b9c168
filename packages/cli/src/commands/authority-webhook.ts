import type { Command } from 'commander';
import {
  AuthorityError,
  CLI_PRINCIPAL,
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from '@volact/authority';
import { CliError, printJson } from '../output.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type TargetOptions } from './authority-target.js';

/**
 * `volact authority webhook add|list|remove|deliveries|redeliver`: signed webhooks of the
 * publisher or of one organisation (docs/portal.md "Webhooks"). The endpoint's URL is the
 * argument of `add` (`--url` names a remote authority, as on every verb). On the data directory
 * the CLI acts as the publisher owner `cli`; with --url, as the token's holder.
 */

const STATES = ['pending', 'delivered', 'failed'] as const;
type State = (typeof STATES)[number];
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  url: '<url>',
  events: '--event',
  orgId: '--org',
  state: '--state',
};

async function withFlags<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const flag = err instanceof AuthorityError && err.field !== undefined ? FLAG_OF_FIELD[err.field] : undefined;
    if (flag === undefined || (err as AuthorityError).message.startsWith(flag)) throw err;
    throw new AuthorityError((err as AuthorityError).code, `${flag}: ${(err as AuthorityError).message}`);
  }
}

const collect = (value: string, previous: string[]) => [...previous, value];

const describeEndpoint = (e: WebhookEndpoint) =>
  `${e.id}\t${e.orgId ?? 'publisher'}\t${e.url}\t${e.events.join(',')}\tsecret …${e.secretLast5}\tsince ${e.createdAt}`;
const describeDelivery = (d: WebhookDelivery) =>
  [
    d.id,
    d.state,
    d.eventType,
    d.eventId,
    `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
    d.lastStatus !== null ? `last ${d.lastStatus}` : d.lastError ? `last: ${d.lastError}` : '',
    d.state === 'pending' && d.nextAttemptAt ? `next ${d.nextAttemptAt}` : '',
    d.deliveredAt ? `delivered ${d.deliveredAt}` : '',
  ]
    .filter(Boolean)
    .join('\t');

export function registerAuthorityWebhook(authority: Command, run: Run): void {
  const webhook = authority
    .command('webhook')
    .description('signed webhooks: endpoints that hear key usage, raises, revocations, hosts and refusals');

  targetOptions(
    webhook
      .command('add')
      .description('add an endpoint (https, or http to this machine); prints its signing secret, once')
      .argument('<url>', 'where events are POSTed: https://… (http:// only to 127.0.0.1, ::1 or localhost)'),
  )
    .option('--event <type>', `an event to send (repeat for several): ${WEBHOOK_EVENT_TYPES.join(', ')}`, collect, [])
    .option(
      '--org <id>',
      "an organisation's endpoint (hears that organisation's events); default: the publisher's (hears all)",
    )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { event: string[]; org?: string; json?: boolean }, url: string) => {
        if (o.event.length === 0) {
          throw new CliError('OPTION_INVALID', `--event: name at least one of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
        }
        const a = openAuthority(o);
        try {
          const { endpoint, secret } = await withFlags(() =>
            a.webhooks.create(
              { url, events: o.event as WebhookEventType[], ...(o.org !== undefined ? { orgId: o.org } : {}) },
              CLI_PRINCIPAL,
            ),
          );
          if (o.json) printJson({ endpoint, secret });
          else {
            console.log(`webhook endpoint ${endpoint.id} → ${endpoint.url} (${endpoint.events.join(', ')})`);
            console.log(`signing secret (shown once; the receiver verifies Volact-Signature with it): ${secret}`);
          }
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(webhook.command('list').description('webhook endpoints (removed ones are not listed)'))
    .option('--org <id>', 'only this organisation’s endpoints (org_…)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { org?: string; json?: boolean }) => {
        const a = openAuthority(o);
        try {
          const endpoints = await withFlags(() => a.webhooks.list(o.org !== undefined ? { orgId: o.org } : {}));
          if (o.json) printJson({ endpoints });
          else if (endpoints.length === 0) console.log('no webhook endpoints');
          else for (const e of endpoints) console.log(describeEndpoint(e));
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(
    webhook
      .command('remove')
      .description('remove an endpoint: nothing more is sent to it; its delivery log stays')
      .argument('<id>', 'the endpoint id (whe_…)'),
  ).action(
    run(async (o: TargetOptions, id: string) => {
      const a = openAuthority(o);
      try {
        await a.webhooks.remove(id, CLI_PRINCIPAL);
        console.log(`webhook endpoint ${id} removed`);
      } finally {
        await a.close();
      }
    }),
  );

  targetOptions(
    webhook
      .command('deliveries')
      .description("an endpoint's delivery log, newest first")
      .argument('<id>', 'the endpoint id (whe_…)'),
  )
    .option('--state <state>', `only deliveries in this state: ${STATES.join(', ')}`)
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { state?: string; json?: boolean }, id: string) => {
        if (o.state !== undefined && !STATES.includes(o.state as State)) {
          throw new CliError('OPTION_INVALID', `--state must be one of ${STATES.join(', ')}, got "${o.state}"`);
        }
        const a = openAuthority(o);
        try {
          const items: WebhookDelivery[] = [];
          let cursor: string | undefined;
          do {
            const page = await withFlags(() =>
              a.webhooks.deliveries(id, {
                limit: 500,
                ...(o.state !== undefined ? { state: o.state as State } : {}),
                ...(cursor !== undefined ? { cursor } : {}),
              }),
            );
            items.push(...page.items);
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          if (o.json) printJson({ deliveries: items });
          else if (items.length === 0) console.log('no deliveries');
          else for (const d of items) console.log(describeDelivery(d));
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(
    webhook
      .command('redeliver')
      .description('send a delivery’s event to its endpoint again (a new delivery, the same event id)')
      .argument('<deliveryId>', 'the delivery id (whd_…, as `webhook deliveries` lists it)'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }, deliveryId: string) => {
        const a = openAuthority(o);
        try {
          const d = await a.webhooks.redeliver(deliveryId, CLI_PRINCIPAL);
          if (o.json) printJson(d);
          else console.log(`event ${d.eventId} queued again as delivery ${d.id}`);
        } finally {
          await a.close();
        }
      }),
    );
}
