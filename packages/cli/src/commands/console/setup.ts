import type { Command } from 'commander';
import { VolumeConsole } from '@volact/console';
import { printJson } from '../../output.js';
import { readSecretFile } from '../../options.js';
import type { Run } from '../../runtime.js';
import { type DataDirOptions, consoleStoreOptions, withConsole } from './options.js';

/** `volact console init` and `console admin …`: creating the console and its web UI users. */
export function registerConsoleSetup(con: Command, run: Run): void {
  consoleStoreOptions(
    con
      .command('init')
      .description(
        'create the console: its key file (0600, seals stored keys and tokens), its database and the first web UI admin',
      ),
  )
    .option('--admin-password-file <file>', 'the first admin’s password (12+ characters), for `console serve`')
    .option('--admin-user <name>', 'the first admin’s user name', 'admin')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { adminPasswordFile?: string; adminUser: string }) => {
        const admin =
          o.adminPasswordFile === undefined
            ? undefined
            : { user: o.adminUser, password: readSecretFile(o.adminPasswordFile, '--admin-password-file') };
        const created = await VolumeConsole.create(o.dataDir, {
          ...(o.db === undefined ? {} : { databaseUrl: o.db }),
          ...(admin ? { admin } : {}),
        });
        await created.close();
        if (o.json) printJson({ dataDir: o.dataDir, admin: admin?.user ?? null });
        else {
          console.log(
            `console created in ${o.dataDir} (back up console.key with the database: one is useless without the other)`,
          );
          console.log(
            admin
              ? `web UI admin: ${admin.user} (\`volact console serve --data-dir ${o.dataDir} --listen 127.0.0.1:8390\`)`
              : 'no web UI admin yet: `volact console admin add --user NAME --password-file F`',
          );
        }
      }),
    );

  const admin = con.command('admin').description('console users who may log in to the web UI');
  for (const [verb, description] of [
    ['add', 'add a console user (scrypt-hashed password)'],
    ['set-password', "replace a console user's password"],
  ] as const) {
    consoleStoreOptions(admin.command(verb).description(description))
      .requiredOption('--user <name>', 'the user name')
      .requiredOption('--password-file <file>', 'file holding the password (12+ characters)')
      .option('--json', 'print JSON')
      .action(
        run(async (o: DataDirOptions & { user: string; passwordFile: string }) => {
          const password = readSecretFile(o.passwordFile, '--password-file');
          await withConsole(o, (c) =>
            verb === 'add' ? c.addAdmin(o.user, password) : c.setAdminPassword(o.user, password),
          );
          if (o.json) printJson({ user: o.user, [verb === 'add' ? 'added' : 'passwordSet']: true });
          else console.log(verb === 'add' ? `added ${o.user}` : `password of ${o.user} replaced`);
        }),
      );
  }
}
