import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { DAY, systemClock } from '@volact/core';
import {
  AuthorityError,
  CLI_PRINCIPAL,
  ORG_ROLES,
  PUBLISHER_ROLES,
  type ApiTokenInfo,
  type Role,
  type User,
} from '@volact/authority';
import { CliError, printJson } from '../output.js';
import { parseIntOption, readSecretFile } from '../options.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type AuthorityTarget, type TargetOptions } from './authority-target.js';

/**
 * `volact authority user add|list|remove|set-password|disable|enable` and `volact authority
 * token create|list|revoke`: the people who sign in to the web UI and the API tokens of
 * scripts and consoles (docs/portal.md "People, sessions and tokens"). On the data directory
 * the CLI acts as the publisher owner `cli` (the way to add the first owner); with --url, as
 * the token's holder. A password is read from a file or standard input, never an argument.
 */

const ROLES: readonly Role[] = [...PUBLISHER_ROLES, ...ORG_ROLES];
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  email: '--email',
  name: '--name',
  role: '--role',
  orgId: '--org',
  password: '--password-file',
  scopes: '--scope',
  expiresAt: '--expires-days',
};

/** A refusal about a field names this command's flag for it. */
async function withFlags<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const flag = err instanceof AuthorityError && err.field !== undefined ? FLAG_OF_FIELD[err.field] : undefined;
    if (flag === undefined || (err as AuthorityError).message.startsWith(flag)) throw err;
    throw new AuthorityError((err as AuthorityError).code, `${flag}: ${(err as AuthorityError).message}`);
  }
}

async function using<T>(o: TargetOptions, work: (a: AuthorityTarget) => Promise<T>): Promise<T> {
  const a = openAuthority(o);
  try {
    return await withFlags(() => work(a));
  } finally {
    await a.close();
  }
}

const collect = (value: string, previous: string[]) => [...previous, value];

const describeUser = (u: User) =>
  [
    u.id,
    u.email,
    u.role,
    u.orgId ?? 'publisher',
    u.disabledAt ? `disabled ${u.disabledAt}` : 'enabled',
    u.lastSignInAt ? `last sign-in ${u.lastSignInAt}` : 'never signed in',
    `"${u.name}"`,
  ].join('\t');

const describeToken = (t: ApiTokenInfo) =>
  [
    t.id,
    `${t.name} …${t.last5}`,
    t.scopes.join(','),
    t.orgId ?? 'publisher',
    t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt ? `expires ${t.expiresAt}` : 'no expiry',
    t.lastUsedAt ? `last used ${t.lastUsedAt}` : 'never used',
  ].join('\t');

/** The password in a file (`-`: standard input), never an argument (`ps` would show it). */
const readPassword = (file: string) => readSecretFile(file, '--password-file');

export function registerAuthorityAccess(authority: Command, run: Run): void {
  const user = authority
    .command('user')
    .description('people who sign in to the web UI: publisher users and organisation users');

  targetOptions(user.command('add').description('add a user with a password (at least 12 characters)'))
    .requiredOption('--email <email>', 'what the user signs in with')
    .requiredOption('--name <name>', "the user's name")
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')} (org-admin and viewer need --org)`)
    .option('--org <id>', 'the organisation of an org-admin or viewer (org_…)')
    .requiredOption('--password-file <file>', 'a file holding the password, or - for standard input')
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: TargetOptions & {
            email: string;
            name: string;
            role: string;
            org?: string;
            passwordFile: string;
            json?: boolean;
          },
        ) => {
          if (!ROLES.includes(o.role as Role)) {
            throw new CliError('OPTION_INVALID', `--role must be one of ${ROLES.join(', ')}, got "${o.role}"`);
          }
          const password = readPassword(o.passwordFile);
          const u = await using(o, (a) =>
            a.access.addUser(
              { email: o.email, name: o.name, role: o.role as Role, orgId: o.org ?? null, password },
              CLI_PRINCIPAL,
            ),
          );
          if (o.json) printJson(u);
          else console.log(`user ${u.id} added: ${u.email}, ${u.role}${u.orgId ? ` of ${u.orgId}` : ''}`);
        },
      ),
    );

  targetOptions(user.command('list').description('users, by email'))
    .option('--org <id>', "only this organisation's users (org_…)")
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { org?: string; json?: boolean }) => {
        const users = await using(o, (a) => a.access.listUsers(o.org !== undefined ? { orgId: o.org } : {}));
        if (o.json) printJson({ users });
        else if (users.length === 0) console.log('no users');
        else for (const u of users) console.log(describeUser(u));
      }),
    );

  targetOptions(
    user
      .command('remove')
      .description('remove a user: their sessions end; tokens they made stop working')
      .argument('<user>', 'the user id (usr_…) or email'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }, id: string) => {
        const u = await using(o, async (a) => {
          const found = await a.access.getUser(id);
          await a.access.removeUser(found.id, CLI_PRINCIPAL);
          return found;
        });
        if (o.json) printJson({ removed: u });
        else console.log(`user ${u.id} (${u.email}) removed`);
      }),
    );

  targetOptions(
    user
      .command('set-password')
      .description("set a user's password: every session of the user ends")
      .argument('<user>', 'the user id (usr_…) or email'),
  )
    .requiredOption('--password-file <file>', 'a file holding the new password, or - for standard input')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { passwordFile: string; json?: boolean }, id: string) => {
        const password = readPassword(o.passwordFile);
        const u = await using(o, async (a) =>
          a.access.updateUser((await a.access.getUser(id)).id, { password }, CLI_PRINCIPAL),
        );
        if (o.json) printJson(u);
        else console.log(`password of ${u.email} set; their sessions ended`);
      }),
    );

  for (const verb of ['disable', 'enable'] as const) {
    targetOptions(
      user
        .command(verb)
        .description(
          verb === 'disable'
            ? 'disable a user: no sign-in, sessions end, tokens they made stop (kept to enable again)'
            : 'enable a disabled user again (they sign in anew)',
        )
        .argument('<user>', 'the user id (usr_…) or email'),
    )
      .option('--json', 'print JSON')
      .action(
        run(async (o: TargetOptions & { json?: boolean }, id: string) => {
          const u = await using(o, async (a) =>
            a.access.updateUser((await a.access.getUser(id)).id, { disabled: verb === 'disable' }, CLI_PRINCIPAL),
          );
          if (o.json) printJson(u);
          else console.log(`user ${u.email} ${verb}d`);
        }),
      );
  }

  const token = authority
    .command('token')
    .description('API tokens (vat_…) with scopes, for scripts, consoles and remote CLI use');

  targetOptions(token.command('create').description('make an API token: it is shown once, only its hash is kept'))
    .requiredOption('--name <name>', 'what the token is for (shown in lists and the audit log)')
    .requiredOption(
      '--scope <scope>',
      'a scope: publisher:<right>, org:<org id>:<right> or their * (repeat for several; docs/portal.md)',
      collect,
      [] as string[],
    )
    .option('--expires-days <n>', 'the token stops working after this many days (default: never)')
    .option('--out <file>', 'write the token to this new file (mode 0600) instead of standard output')
    .option('--json', 'print JSON')
    .action(
      run(
        async (
          o: TargetOptions & { name: string; scope: string[]; expiresDays?: string; out?: string; json?: boolean },
        ) => {
          const days =
            o.expiresDays === undefined ? undefined : parseIntOption(o.expiresDays, '--expires-days', 1, 3650);
          const made = await using(o, (a) =>
            a.access.createToken(
              {
                name: o.name,
                scopes: o.scope,
                ...(days !== undefined ? { expiresAt: systemClock.now() + days * DAY } : {}),
              },
              CLI_PRINCIPAL,
            ),
          );
          if (o.out !== undefined) {
            try {
              writeFileSync(o.out, `${made.token}\n`, { mode: 0o600, flag: 'wx' });
            } catch (err) {
              throw new CliError(
                'OPTION_INVALID',
                `--out ${o.out} cannot be written (${(err as NodeJS.ErrnoException).code ?? 'unwritable'}): give a new file; the token ${made.info.id} was made, revoke it (token revoke ${made.info.id}) and make another`,
              );
            }
            if (o.json) printJson({ out: o.out, info: made.info });
            else console.log(`token ${made.info.id} (…${made.info.last5}) written to ${o.out}`);
          } else if (o.json) printJson(made);
          else {
            console.log(made.token);
            console.error(`token ${made.info.id} (…${made.info.last5}): shown once, keep it now`);
          }
        },
      ),
    );

  targetOptions(token.command('list').description('API tokens (never their text: name and last five characters)'))
    .option('--org <id>', "only this organisation's tokens (org_…)")
    .option('--user <user>', 'only the tokens this user made (id or email)')
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { org?: string; user?: string; json?: boolean }) => {
        const tokens = await using(o, async (a) =>
          a.access.listTokens({
            ...(o.org !== undefined ? { orgId: o.org } : {}),
            ...(o.user !== undefined ? { createdBy: (await a.access.getUser(o.user)).id } : {}),
          }),
        );
        if (o.json) printJson({ tokens });
        else if (tokens.length === 0) console.log('no API tokens');
        else for (const t of tokens) console.log(describeToken(t));
      }),
    );

  targetOptions(
    token
      .command('revoke')
      .description('revoke an API token: it stops working at once')
      .argument('<tokenId>', 'the token id (tok_…, as `token list` shows it)'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }, id: string) => {
        const t = await using(o, (a) => a.access.revokeToken(id, CLI_PRINCIPAL));
        if (o.json) printJson(t);
        else console.log(`token ${t.id} (${t.name} …${t.last5}) revoked`);
      }),
    );
}
