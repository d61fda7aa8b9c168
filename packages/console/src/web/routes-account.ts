import { z } from 'zod';
import { authorityOrigin } from '../authority-client.js';
import type { ApiDeps, Route } from './api.js';
import { parseBody } from './api.js';
import {
  addUserRequest,
  loginRequest,
  userPasswordRequest,
  userRoleRequest,
  type Answers,
  type UserRole,
} from './contract.js';
import { WebError } from './errors.js';
import { clearedSessionCookie, sessionCookie, type Session } from './sessions.js';

/** Login, logout, the session, and the console's users (admin only). */
export function accountRoutes(deps: ApiDeps): Route[] {
  const c = deps.console;
  // The UI pre-fills proxy activation with the default authority's origin (never its admin token).
  const defaultAuthority = deps.authority ? authorityOrigin(deps.authority.url) : null;
  const makCounters = deps.authority?.adminToken !== undefined;
  const consoleKeyId = c.consoleKeyId();
  const sessionInfo = (who: { readonly user: string; readonly role: UserRole }): Answers['session'] => ({
    user: who.user,
    role: who.role,
    authority: defaultAuthority,
    makCounters,
    consoleKeyId,
  });

  return [
    {
      method: 'POST',
      path: '/api/login',
      auth: false,
      async handle(ctx) {
        const wait = deps.limiter.retryAfter(ctx.address);
        if (wait > 0) {
          throw new WebError(
            'LOGIN_RATE_LIMITED',
            `too many failed logins from this address: try again in ${Math.ceil(wait / 1000)} s`,
            { 'retry-after': String(Math.ceil(wait / 1000)) },
          );
        }
        const { user, password } = parseBody(loginRequest, ctx.body);
        // An address that logged in to this account recently is not held back by others' failures.
        const accountWait = deps.accounts.retryAfter(user, ctx.address);
        if (accountWait > 0) {
          deps.log(`login refused from ${ctx.address}: the account is backing off`);
          throw new WebError(
            'LOGIN_RATE_LIMITED',
            `too many failed logins for this account: try again in ${Math.ceil(accountWait / 1000)} s`,
            { 'retry-after': String(Math.ceil(accountWait / 1000)) },
          );
        }
        const attempt = deps.limiter.fail(ctx.address);
        const backingOff = deps.accounts.fail(user);
        const who = await c.authenticate(user, password);
        if (!who) {
          deps.log(`login failed from ${ctx.address}`);
          throw new WebError('LOGIN_FAILED', 'the user name or password is wrong');
        }
        deps.limiter.forgive(ctx.address, attempt);
        deps.accounts.succeed(user, ctx.address, backingOff);
        await deps.sessions.delete(ctx.sessionToken);
        const token = await deps.sessions.create(who.user);
        deps.log(`login ${who.user} from ${ctx.address}`);
        return {
          status: 200,
          json: sessionInfo(who),
          headers: { 'set-cookie': sessionCookie(token, ctx.secure) },
        };
      },
    },
    {
      method: 'POST',
      path: '/api/logout',
      auth: false,
      async handle(ctx) {
        await deps.sessions.delete(ctx.sessionToken);
        if (ctx.session) deps.log(`logout ${ctx.session.user}`);
        return {
          status: 200,
          json: { ok: true } satisfies Answers['logout'],
          headers: { 'set-cookie': clearedSessionCookie(ctx.secure) },
        };
      },
    },
    {
      method: 'GET',
      path: '/api/session',
      auth: true,
      async handle(ctx) {
        return { status: 200, json: sessionInfo(ctx.session as Session) };
      },
    },
    {
      method: 'GET',
      path: '/api/users',
      auth: true,
      role: 'admin',
      async handle() {
        return { status: 200, json: { users: await c.listUsers() } satisfies Answers['users'] };
      },
    },
    {
      method: 'POST',
      path: '/api/users',
      auth: true,
      async handle(ctx) {
        const body = parseBody(addUserRequest, ctx.body);
        const user = await c.addUser(body.user, body.password, body.role);
        deps.log(`user ${user.name} added as ${user.role} by ${(ctx.session as Session).user}`);
        return { status: 201, json: { user } satisfies Answers['userChanged'] };
      },
    },
    {
      method: 'POST',
      path: '/api/users/:name/password',
      auth: true,
      async handle(ctx, { name }) {
        const { password } = parseBody(userPasswordRequest, ctx.body);
        await c.setAdminPassword(name as string, password);
        deps.log(`user ${(name as string).slice(0, 64)}: password set by ${(ctx.session as Session).user}`);
        return { status: 200, json: { ok: true } satisfies Answers['passwordSet'] };
      },
    },
    {
      method: 'POST',
      path: '/api/users/:name/role',
      auth: true,
      async handle(ctx, { name }) {
        const { role } = parseBody(userRoleRequest, ctx.body);
        const user = await c.setUserRole(name as string, role);
        deps.log(`user ${user.name} made ${user.role} by ${(ctx.session as Session).user}`);
        return { status: 200, json: { user } satisfies Answers['userChanged'] };
      },
    },
    {
      method: 'POST',
      path: '/api/users/:name/remove',
      auth: true,
      async handle(ctx, { name }) {
        parseBody(emptyBody, ctx.body ?? {});
        await c.removeUser(name as string);
        deps.log(`user ${(name as string).slice(0, 64)} removed by ${(ctx.session as Session).user}`);
        return { status: 200, json: { removed: name as string } satisfies Answers['userRemoved'] };
      },
    },
  ];
}

/** A POST that takes no fields: `{}` (or no body). */
const emptyBody = z.strictObject({});
