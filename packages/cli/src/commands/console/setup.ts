import type { Command } from 'commander';
import { VolumeConsole, checkUserRole } from '@volact/console';
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

  const admin = con
    .command('admin')
    .description('console users who may log in to the web UI, with a role: admin (everything) or viewer (reads only)');

  consoleStoreOptions(admin.command('add').description('add a console user (scrypt-hashed password) with a role'))
    .requiredOption('--user <name>', 'the user name')
    .requiredOption('--password-file <file>', 'file holding the password (12+ characters)')
    .option('--role <role>', 'admin (everything) or viewer (reads only)', 'admin')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { user: string; passwordFile: string; role: string }) => {
        const role = checkUserRole(o.role);
        const password = readSecretFile(o.passwordFile, '--password-file');
        const user = await withConsole(o, (c) => c.addUser(o.user, password, role));
        if (o.json) printJson({ user: user.name, role: user.role, added: true });
        else console.log(`added ${user.name} (${user.role})`);
      }),
    );

  consoleStoreOptions(
    admin.command('set-password').description("replace a console user's password (ends their web sessions)"),
  )
    .requiredOption('--user <name>', 'the user name')
    .requiredOption('--password-file <file>', 'file holding the password (12+ characters)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { user: string; passwordFile: string }) => {
        const password = readSecretFile(o.passwordFile, '--password-file');
        await withConsole(o, (c) => c.setAdminPassword(o.user, password));
        if (o.json) printJson({ user: o.user, passwordSet: true });
        else console.log(`password of ${o.user} replaced (their web sessions ended)`);
      }),
    );

  consoleStoreOptions(admin.command('list').description('the console users and their roles (never a password hash)'))
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions) => {
        const users = await withConsole(o, (c) => c.listUsers(), true);
        if (o.json) printJson({ users });
        else if (users.length === 0)
          console.log('no console user: `volact console admin add --user NAME --password-file F`');
        else for (const u of users) console.log(`${u.name.padEnd(24)} ${u.role.padEnd(7)} added ${u.createdAt}`);
      }),
    );

  consoleStoreOptions(
    admin.command('remove').description('remove a console user (ends their web sessions; never the last admin)'),
  )
    .requiredOption('--user <name>', 'the user name')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { user: string }) => {
        await withConsole(o, (c) => c.removeUser(o.user));
        if (o.json) printJson({ removed: o.user });
        else console.log(`removed ${o.user} (their web sessions ended)`);
      }),
    );

  consoleStoreOptions(
    admin
      .command('set-role')
      .description("change a console user's role (ends their web sessions; never the last admin)"),
  )
    .requiredOption('--user <name>', 'the user name')
    .requiredOption('--role <role>', 'admin (everything) or viewer (reads only)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: DataDirOptions & { user: string; role: string }) => {
        const role = checkUserRole(o.role);
        const user = await withConsole(o, (c) => c.setUserRole(o.user, role));
        if (o.json) printJson({ user: user.name, role: user.role });
        else
          console.log(
            `${user.name} is now ${user.role === 'admin' ? 'an admin' : 'a viewer'} (their web sessions ended)`,
          );
      }),
    );
}
