import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { ConsoleError } from './errors.js';
import type { Fleet } from './fleet.js';
import type { AdminRecord } from './store.js';
import { USER_ROLES, type UserRole, type UserSummary } from './web/contract.js';

/** scrypt at N=2^15, r=8 (32 MiB, ~60 ms here): slow enough to make a stolen database costly to guess. */
const PARAMS = { N: 1 << 15, r: 8, p: 1 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const MAXMEM = 64 * 1024 * 1024;

export const MIN_ADMIN_PASSWORD_LENGTH = 12;
const MAX_ADMIN_PASSWORD_LENGTH = 1024;
const ADMIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, { ...params, maxmem: MAXMEM }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export function checkAdminName(name: string): string {
  if (!ADMIN_NAME_RE.test(name)) {
    throw new ConsoleError(
      'ADMIN_NAME_INVALID',
      `admin name "${name.slice(0, 70)}" is not 1-64 letters, digits, '.', '_', '@' or '-' (starting with a letter or digit)`,
    );
  }
  return name;
}

export function checkAdminPassword(password: string): string {
  if (password.length < MIN_ADMIN_PASSWORD_LENGTH || password.length > MAX_ADMIN_PASSWORD_LENGTH) {
    throw new ConsoleError(
      'ADMIN_PASSWORD_INVALID',
      `an admin password needs ${MIN_ADMIN_PASSWORD_LENGTH} to ${MAX_ADMIN_PASSWORD_LENGTH} characters (this one has ${password.length})`,
    );
  }
  return password;
}

/** `scrypt$N$r$p$salt$hash` (base64): the parameters travel with the hash so they can be raised later. */
export async function hashAdminPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(checkAdminPassword(password), salt, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), hash.toString('base64')].join('$');
}

const DUMMY_SALT = randomBytes(SALT_BYTES);

/**
 * Whether `password` matches `stored`. With no stored hash (unknown user) the same work is
 * done against a dummy, so the answer's timing does not say whether the user exists.
 */
export async function verifyAdminPassword(password: string, stored: string | undefined): Promise<boolean> {
  const parts = stored?.split('$');
  const valid =
    parts?.length === 6 &&
    parts[0] === 'scrypt' &&
    [parts[1], parts[2], parts[3]].every((n) => /^\d{1,7}$/.test(n ?? '')) &&
    Number(parts[2]) * Number(parts[1]) * 128 <= MAXMEM;
  const params = valid ? { N: Number(parts[1]), r: Number(parts[2]), p: Number(parts[3]) } : PARAMS;
  const salt = valid ? Buffer.from(parts[4] as string, 'base64') : DUMMY_SALT;
  const expected = valid ? Buffer.from(parts[5] as string, 'base64') : Buffer.alloc(HASH_BYTES);
  const candidate = await derive(password.slice(0, MAX_ADMIN_PASSWORD_LENGTH), salt, params);
  return valid && candidate.length === expected.length && timingSafeEqual(candidate, expected);
}

// The console's users of the web UI, as stored (see VolumeConsole for what each does).

/** ADMIN_ROLE_INVALID unless `role` is one of USER_ROLES (admin: everything; viewer: reads only). */
export function checkUserRole(role: string): UserRole {
  if (!(USER_ROLES as readonly string[]).includes(role)) {
    throw new ConsoleError(
      'ADMIN_ROLE_INVALID',
      `role "${role.slice(0, 40)}" is not one of ${USER_ROLES.join(', ')} (admin: everything; viewer: reads only)`,
    );
  }
  return role as UserRole;
}

const notFound = (user: string) =>
  new ConsoleError('ADMIN_NOT_FOUND', `no console user "${user.slice(0, 64)}": \`volact console admin list\``);

const toSummary = (a: AdminRecord): UserSummary => ({
  name: a.name,
  role: a.role,
  createdAt: new Date(a.createdAt).toISOString(),
});

export async function addUser(fleet: Fleet, user: string, password: string, role: string): Promise<UserSummary> {
  checkAdminName(user);
  const checked = checkUserRole(role);
  const passwordHash = await hashAdminPassword(password);
  const record: AdminRecord = { name: user, passwordHash, createdAt: fleet.clock.now(), role: checked };
  await fleet.store.addAdmin(record);
  await fleet.log('admin add', null, true, null, `${user} (${checked})`);
  return toSummary(record);
}

/** The first admin of `console init` and `admin add` without a role. */
export async function addAdmin(fleet: Fleet, user: string, password: string): Promise<void> {
  await addUser(fleet, user, password, 'admin');
}

/** Every console user (never the password hash). */
export async function listUsers(fleet: Fleet): Promise<UserSummary[]> {
  return (await fleet.store.listAdmins()).map(toSummary);
}

/** Ends the user's web sessions (a removed user, a changed role or password logs in again). */
const endSessions = (fleet: Fleet, user: string) => fleet.store.webState.deleteUserSessions(user);

export async function removeUser(fleet: Fleet, user: string): Promise<void> {
  if (!(await fleet.store.removeAdmin(user))) throw notFound(user);
  await endSessions(fleet, user);
  await fleet.log('admin remove', null, true, null, user);
}

export async function setUserRole(fleet: Fleet, user: string, role: string): Promise<UserSummary> {
  const checked = checkUserRole(role);
  const changed = await fleet.store.setAdminRole(user, checked);
  if (!changed) throw notFound(user);
  await endSessions(fleet, user);
  await fleet.log('admin role', null, true, null, `${changed.name} (${checked})`);
  return toSummary(changed);
}

export async function setAdminPassword(fleet: Fleet, user: string, password: string): Promise<void> {
  const passwordHash = await hashAdminPassword(password);
  if (!(await fleet.store.setAdminPassword(user, passwordHash))) throw notFound(user);
  await endSessions(fleet, user);
  await fleet.log('admin password', null, true, null, user);
}

export async function authenticate(
  fleet: Fleet,
  user: string,
  password: string,
): Promise<{ user: string; role: UserRole } | null> {
  const admin = user.length <= 64 ? await fleet.store.findAdmin(user) : undefined;
  const ok = await verifyAdminPassword(password, admin?.passwordHash);
  return ok && admin ? { user: admin.name, role: admin.role } : null;
}

export async function countAdmins(fleet: Fleet): Promise<number> {
  return fleet.store.countAdmins();
}
