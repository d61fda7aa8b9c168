import { Option, type Command } from 'commander';
import { Authority, type AuthorityOptions } from '@volact/authority';
import { CliError } from '../output.js';
import { readTokenFile } from '../options.js';
import { RemoteAuthority } from './remote-authority.js';

/**
 * What an `authority` verb acts on: the authority on this machine (`--data-dir`, optionally
 * `--db`) or a remote one over its REST API (`--url URL --token-file F`). Both have this face.
 */
export type AuthorityTarget = Pick<
  Authority,
  | 'addGroup'
  | 'listGroups'
  | 'productConfig'
  | 'mintKey'
  | 'showKey'
  | 'setKeyLimit'
  | 'revokeKey'
  | 'confirm'
  | 'createActivationObject'
  | 'issueOemCertificate'
  | 'issueTokenCa'
  | 'revokeHost'
  | 'revokeManufacturer'
  | 'revokeTokenCa'
  | 'revocationList'
  | 'rootStatus'
  | 'rotateRoot'
  | 'rotateOnlineKey'
  | 'organisations'
  | 'access'
  | 'raiseRequests'
  | 'webhooks'
  | 'close'
>;

// Both satisfy it (checked here, once).
const _local: (a: Authority) => AuthorityTarget = (a) => a;
const _remote: (a: RemoteAuthority) => AuthorityTarget = (a) => a;
void _local;
void _remote;

export interface TargetOptions {
  readonly dataDir?: string;
  readonly db?: string;
  readonly url?: string;
  readonly tokenFile?: string;
}

/** The options of a verb that works on either (none mandatory; openAuthority says which go together). */
export const dataDirOption = () => new Option('--data-dir <dir>', 'data directory of the authority (on this machine)');
export const dbOption = () =>
  new Option('--db <url>', 'keep records in PostgreSQL (postgres://…) instead of SQLite in the data directory');
export const urlOption = () =>
  new Option('--url <url>', 'a remote authority instead of --data-dir: https://… (http:// only on this machine)');
export const tokenFileOption = () =>
  new Option(
    '--token-file <file>',
    "with --url: the bearer token (the authority's admin token, or an API token vat_… with the scopes the verb needs)",
  );

/** `--data-dir`, `--db`, `--url`, `--token-file` on a verb: it works on this machine's authority or a remote one. */
export function targetOptions(command: Command): Command {
  return command.addOption(dataDirOption()).addOption(dbOption()).addOption(urlOption()).addOption(tokenFileOption());
}

/** The local authority (--data-dir) or the remote one (--url and --token-file): exactly one. */
export function openAuthority(o: TargetOptions, local: AuthorityOptions = {}): AuthorityTarget {
  const remote = o.url !== undefined || o.tokenFile !== undefined;
  if (o.dataDir !== undefined && remote) {
    throw new CliError(
      'OPTION_INVALID',
      '--data-dir and --url/--token-file: choose one (the authority on this machine, or a remote one)',
    );
  }
  if (o.dataDir !== undefined) {
    return Authority.open(o.dataDir, { ...(o.db ? { databaseUrl: o.db } : {}), ...local });
  }
  if (!remote) {
    throw new CliError(
      'OPTION_INVALID',
      'give --data-dir DIR (the authority on this machine) or --url URL --token-file F (a remote authority)',
    );
  }
  if (o.db !== undefined) throw new CliError('OPTION_INVALID', '--db goes with --data-dir, not with --url');
  if (o.url === undefined)
    throw new CliError('OPTION_INVALID', '--token-file goes with --url URL (the remote authority)');
  if (o.tokenFile === undefined) {
    throw new CliError('OPTION_INVALID', '--url needs --token-file F: the bearer token for the remote authority');
  }
  return new RemoteAuthority(o.url, readTokenFile(o.tokenFile, '--token-file'));
}
