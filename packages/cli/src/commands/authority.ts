import type { Command } from 'commander';
import { Authority, createAuthorityServer } from '@volact/authority';
import { GROUP_KINDS, type GroupKind } from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseIntOption, parseListen } from '../options.js';
import { createLogger, waitForShutdown, type Run } from '../runtime.js';

const storeOption = (o: { db?: string }) => (o.db ? { databaseUrl: o.db } : {});

export function registerAuthority(program: Command, run: Run): void {
  const authority = program
    .command('authority')
    .description("the publisher's authority: root key, groups, keys, host certificates");

  authority
    .command('init')
    .description('create the root signing key and the database in a data directory')
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .option('--name <name>', 'name shown in product configs', 'volact authority')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; db?: string; name: string; json?: boolean }) => {
        const a = Authority.init(o.dataDir, { name: o.name, ...storeOption(o) });
        const out = { dataDir: o.dataDir, rootPublicKey: a.rootPublicKeyRaw.toString('base64') };
        await a.close();
        if (o.json) printJson(out);
        else console.log(`authority created in ${o.dataDir}\nroot public key ${out.rootPublicKey}`);
      }),
    );

  const group = authority.command('group').description('product groups');
  group
    .command('add')
    .description('add a product group (threshold: 5 for app/server kinds, 25 for client-os)')
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .requiredOption('--name <name>', 'group name, e.g. office14')
    .option('--kind <kind>', `one of ${GROUP_KINDS.join(', ')}`, 'app')
    .option('--threshold <n>', 'activation threshold (clients counted before any activates)')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: { dataDir: string; db?: string; name: string; kind: string; threshold?: string; json?: boolean }) => {
          if (!GROUP_KINDS.includes(o.kind as GroupKind)) {
            throw new CliError('OPTION_INVALID', `--kind must be one of ${GROUP_KINDS.join(', ')}, got "${o.kind}"`);
          }
          const a = Authority.open(o.dataDir, storeOption(o));
          try {
            const g = await a.addGroup({
              name: o.name,
              kind: o.kind as GroupKind,
              ...(o.threshold !== undefined
                ? { threshold: parseIntOption(o.threshold, '--threshold', 1, 1_000_000) }
                : {}),
            });
            if (o.json) printJson(g);
            else console.log(`group ${g.name} (${g.kind}, threshold ${g.threshold}) id ${g.id}`);
          } finally {
            await a.close();
          }
        },
      ),
    );
  group
    .command('list')
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; db?: string; json?: boolean }) => {
        const a = Authority.open(o.dataDir, storeOption(o));
        try {
          const groups = await a.listGroups();
          if (o.json) printJson({ groups });
          else for (const g of groups) console.log(`${g.name}\t${g.kind}\tthreshold ${g.threshold}\t${g.id}`);
        } finally {
          await a.close();
        }
      }),
    );

  authority
    .command('product-config')
    .description("print the product configuration a publisher ships in the group's product")
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .requiredOption('--group <name>', 'product group')
    .action(
      run(async (o: { dataDir: string; db?: string; group: string }) => {
        const a = Authority.open(o.dataDir, storeOption(o));
        try {
          process.stdout.write(`${JSON.stringify(await a.productConfig(o.group), null, 2)}\n`);
        } finally {
          await a.close();
        }
      }),
    );

  const key = authority.command('key').description('product keys');
  key
    .command('mint')
    .description('mint a key; secret keys are shown once and stored only as a keyed hash')
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .requiredOption('--type <type>', 'key type: kms-host')
    .requiredOption('--group <names>', 'product group(s), comma-separated')
    .option('--hosts <n>', 'hosts a KMS host key may activate', '6')
    .option('--activations-per-host <n>', 'times each host may activate it', '10')
    .option('--json', 'print JSON')
    .action(
      run(
        async (o: {
          dataDir: string;
          db?: string;
          type: string;
          group: string;
          hosts: string;
          activationsPerHost: string;
          json?: boolean;
        }) => {
          if (o.type !== 'kms-host')
            throw new CliError(
              'OPTION_INVALID',
              `--type must be kms-host (other key types come later), got "${o.type}"`,
            );
          const a = Authority.open(o.dataDir, storeOption(o));
          try {
            const minted = await a.mintKey({
              type: 'kms-host',
              groups: o.group
                .split(',')
                .map((g) => g.trim())
                .filter(Boolean),
              hosts: parseIntOption(o.hosts, '--hosts', 1, 100_000),
              activationsPerHost: parseIntOption(o.activationsPerHost, '--activations-per-host', 1, 100_000),
            });
            if (o.json) printJson(minted);
            else console.log(minted.key);
          } finally {
            await a.close();
          }
        },
      ),
    );

  authority
    .command('serve')
    .description('serve the HTTP JSON API (/v1)')
    .requiredOption('--data-dir <dir>', 'data directory of the authority')
    .option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory')
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8080')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(
      run(async (o: { dataDir: string; db?: string; listen: string; logLevel: string }) => {
        const listen = parseListen(o.listen, '--listen');
        const logger = createLogger(o.logLevel);
        const a = Authority.open(o.dataDir, storeOption(o));
        const app = createAuthorityServer(a, { logger });
        await app.listen({ host: listen.host, port: listen.port });
        const addr = app.server.address();
        const port = addr && typeof addr !== 'string' ? addr.port : listen.port;
        process.stderr.write(`authority listening on http://${listen.host}:${port}\n`);
        await waitForShutdown();
        await app.close();
        await a.close();
      }),
    );
}
