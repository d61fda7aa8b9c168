import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  DEFAULT_CONTAINER,
  containerDn,
  listEntries,
  publishEntry,
  removeEntry,
  type DirectoryConnection,
  type DirectoryLocation,
} from '@volact/directory';
import {
  CoreError,
  DAY,
  OBJECT_EXPIRY_WARNING_DAYS,
  activationObjectValidity,
  parseActivationObject,
  activationObjectFromConfirmation,
  activationObjectInstallationId,
  parseKeyOfType,
  parseProductConfig,
  DELEGATION_PURPOSE,
  TrustStore,
  trustConfirmationKeys,
} from '@volact/core';
import { CliError, printJson } from '../output.js';
import { parseDuration, readKeyInput, readProductConfigFile, readSecretFile } from '../options.js';
import type { Run } from '../runtime.js';

interface DirectoryOptions {
  url: string;
  bindDn?: string;
  passwordFile?: string;
  base: string;
  container: string;
  timeout: string;
  json?: boolean;
}

function connection(o: DirectoryOptions): DirectoryConnection {
  if ((o.bindDn === undefined) !== (o.passwordFile === undefined)) {
    throw new CliError('OPTION_INVALID', '--bind-dn and --password-file go together (neither: an anonymous bind)');
  }
  return {
    url: o.url,
    timeoutMs: parseDuration(o.timeout, '--timeout', { min: 100, max: 300_000 }),
    ...(o.bindDn !== undefined && o.passwordFile !== undefined
      ? { bindDn: o.bindDn, password: readSecretFile(o.passwordFile, '--password-file') }
      : {}),
  };
}

const location = (o: DirectoryOptions): DirectoryLocation => ({ base: o.base, container: o.container });

/** An activation object file: JSON with a string `name` (its entry name); published as text. */
function readActivationObject(file: string): { name: string; text: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new CliError(
      'OPTION_INVALID',
      `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliError(
      'OPTION_INVALID',
      `${file} is not JSON (${(err as Error).message}); give an activation object file`,
    );
  }
  const name = (parsed as { name?: unknown } | null)?.name;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof name !== 'string') {
    throw new CliError('OPTION_INVALID', `${file} has no string "name" field; an activation object names itself`);
  }
  return { name, text };
}

/**
 * The fields `list` shows when the content is JSON carrying them; `group` may be a name or,
 * as in a volact activation object, `{id, name}`.
 */
function summary(content: string): { group?: string; domain?: string; issuedAt?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const out: { group?: string; domain?: string; issuedAt?: string } = {};
  for (const key of ['group', 'domain', 'issuedAt'] as const) {
    let value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'object' && value !== null) value = (value as { name?: unknown }).name;
    if (typeof value === 'string' || typeof value === 'number') out[key] = String(value);
  }
  return out;
}

/**
 * An activation object's signed end and the warning to print before it (within
 * OBJECT_EXPIRY_WARNING_DAYS, or past it); null fields when the content is not a valid object.
 */
export function expiryOf(content: string, now: number): { expiresAt: string | null; warning: string | null } {
  let object;
  try {
    object = parseActivationObject(content);
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    // An object of format 1 never expired: it no longer licenses anyone, say so.
    return /format 1/.test(err.message)
      ? { expiresAt: null, warning: err.message }
      : { expiresAt: null, warning: null };
  }
  const end = activationObjectValidity(object).expiresAt;
  const expiresAt = new Date(end).toISOString();
  const fix = 're-issue it (`volact authority activation-object create`) and publish it with --replace';
  if (now >= end)
    return {
      expiresAt,
      warning: `${object.name} expired on ${expiresAt}: members are no longer licensed by it; ${fix}`,
    };
  const days = Math.ceil((end - now) / DAY);
  if (days <= OBJECT_EXPIRY_WARNING_DAYS) {
    return { expiresAt, warning: `${object.name} expires in ${days} day(s), on ${expiresAt}: ${fix}` };
  }
  return { expiresAt, warning: null };
}

export function registerDirectory(program: Command, run: Run): void {
  const directory = program
    .command('directory')
    .description('directory-based activation: activation objects in an LDAP directory');

  /** The options every directory command takes; writes need a bind, reads may be anonymous. */
  const withConnectionOptions = (command: Command, bindRequired: boolean) => {
    const bindDn = new Option('--bind-dn <dn>', 'DN to bind as, e.g. cn=admin,dc=corp,dc=example');
    const passwordFile = new Option('--password-file <file>', "file holding the bind DN's password");
    if (bindRequired) {
      bindDn.makeOptionMandatory();
      passwordFile.makeOptionMandatory();
    }
    return command
      .requiredOption('--url <url>', 'the directory, ldap://HOST[:PORT] or ldaps://HOST[:PORT]')
      .addOption(bindDn)
      .addOption(passwordFile)
      .requiredOption('--base <dn>', 'base DN, e.g. dc=corp,dc=example')
      .option('--container <rdn>', 'container of the activation objects, relative to the base', DEFAULT_CONTAINER)
      .option('--timeout <duration>', 'connect and per-operation timeout', '10s')
      .option('--json', 'print JSON');
  };

  withConnectionOptions(
    directory
      .command('publish')
      .description('publish an activation object (the container is created on first use)')
      .argument('<file>', 'activation object JSON; its "name" field names the entry')
      .option('--replace', 'overwrite an object already published under that name'),
    true,
  ).action(
    run(async (o: DirectoryOptions & { replace?: boolean }, file: string) => {
      const { name, text } = readActivationObject(file);
      const expiry = expiryOf(text, Date.now());
      const result = await publishEntry(connection(o), location(o), name, text, { replace: Boolean(o.replace) });
      if (expiry.warning) process.stderr.write(`warning: ${expiry.warning}\n`);
      if (o.json) printJson({ ...result, ...expiry });
      else
        console.log(
          `${result.replaced ? 'replaced' : 'published'} ${result.name} as ${result.dn}` +
            (result.containerCreated ? ' (container created)' : ''),
        );
    }),
  );

  withConnectionOptions(
    directory.command('list').description('list the published activation objects (anonymous without --bind-dn)'),
    false,
  ).action(
    run(async (o: DirectoryOptions) => {
      const entries = await listEntries(connection(o), location(o));
      const now = Date.now();
      const expiries = entries.map((e) => expiryOf(e.content, now));
      for (const x of expiries) if (x.warning) process.stderr.write(`warning: ${x.warning}\n`);
      if (o.json) {
        printJson({ entries: entries.map((e, i) => ({ ...e, ...summary(e.content), ...expiries[i] })) });
        return;
      }
      if (entries.length === 0) {
        console.log(`no activation objects in ${containerDn(location(o))}`);
        return;
      }
      for (const e of entries) {
        const s = summary(e.content);
        const fields = (['group', 'domain', 'issuedAt'] as const)
          .filter((k) => s[k] !== undefined)
          .map((k) => `${k}=${s[k]}`);
        const end = expiryOf(e.content, now).expiresAt;
        console.log([e.name, ...fields, ...(end ? [`expiresAt=${end}`] : [])].join('  '));
      }
    }),
  );

  withConnectionOptions(
    directory
      .command('remove')
      .description('remove a published activation object')
      .argument('<name>', 'the name of the activation object'),
    true,
  ).action(
    run(async (o: DirectoryOptions, name: string) => {
      await removeEntry(connection(o), location(o), name);
      if (o.json) printJson({ removed: name });
      else console.log(`removed ${name} from ${containerDn(location(o))}`);
    }),
  );

  // A disconnected forest makes its activation object by phone, with its KMS host key.
  const phoneOptions = (command: Command) =>
    command
      .option(
        '--key <key>',
        "the forest's KMS host key (it covers the product's group; visible to other local users in ps: prefer --key-file)",
      )
      .option('--key-file <file>', "file holding the forest's KMS host key (- for standard input)")
      .requiredOption('--domain <domain>', 'the directory domain, e.g. corp.test')
      .requiredOption('--product <file>', "the product's product.json (names the group and the authority)")
      .option('--json', 'print JSON');
  const phoneInputs = (o: { key?: string; keyFile?: string; product: string }) => {
    const keyText = readKeyInput(o.key, o.keyFile);
    return {
      key: parseKeyOfType(keyText, 'kms-host'),
      product: parseProductConfig(readProductConfigFile(o.product)),
    };
  };
  phoneOptions(
    directory
      .command('installation-id')
      .description('a disconnected forest, step 1: the installation ID to read out for an activation object'),
  ).action(
    run(async (o: { key?: string; keyFile?: string; domain: string; product: string; json?: boolean }) => {
      const { key, product } = phoneInputs(o);
      const iid = activationObjectInstallationId({ key, domain: o.domain, groupId: product.group.id }).text;
      if (o.json) printJson({ installationId: iid });
      else console.log(iid);
    }),
  );
  phoneOptions(
    directory
      .command('object-from-confirmation')
      .description('step 2: build the activation object from the confirmation ID read back (prints its JSON)')
      .requiredOption('--name <name>', 'the object name in the directory')
      .argument('<confirmation-id...>', 'the digit groups, with or without dashes'),
  ).action(
    run(
      async (
        o: { key?: string; keyFile?: string; domain: string; product: string; name: string },
        ...cid: string[]
      ) => {
        const { key, product } = phoneInputs(o);
        const object = activationObjectFromConfirmation({
          key,
          domain: o.domain,
          group: { id: product.group.id, name: product.group.name },
          name: o.name,
          rootPublicKeyRaw: Buffer.from(product.authority.rootPublicKey, 'base64'),
          // the CID's key index names a root (0) or an online key the product config delegates
          keys: trustConfirmationKeys(TrustStore.fromProductConfig(product), DELEGATION_PURPOSE.phoneActivationObjects),
          confirmationId: cid.join(' '),
        });
        process.stdout.write(`${JSON.stringify(object, null, 2)}\n`);
      },
    ),
  );
}
