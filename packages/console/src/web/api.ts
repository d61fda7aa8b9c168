import type { z } from 'zod';
import { LICENCE_STATES, type Clock, type LicenceState } from '@volact/core';
import { authorityOrigin, type AuthorityConnection } from '../authority-client.js';
import { toCsv } from '../csv.js';
import type { VolumeConsole } from '../console.js';
import type { MachineResult, MachineSelection, MachineSummary, Progress } from '../results.js';
import { ConsoleError } from '../errors.js';
import {
  REPORT_NAMES,
  jobRequest,
  keyRequest,
  loginRequest,
  type Answers,
  type JobOperation,
  type JobRequest,
} from './contract.js';
import { WebError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { AccountLimiter, LoginLimiter, SessionStore } from './sessions.js';
import { clearedSessionCookie, sessionCookie, type Session } from './sessions.js';

/** What the API answers: JSON (or text, for CSV) with a status; the JSON as contract.ts declares it. */
export interface Answer {
  readonly status: number;
  readonly json?: unknown;
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RequestContext {
  readonly method: string;
  readonly url: URL;
  /** The parsed JSON body (POST), undefined when empty. */
  readonly body: unknown;
  /** The caller's session; routes that need one get it checked first. */
  readonly session: Session | undefined;
  /** The session cookie's token (logout forgets it). */
  readonly sessionToken: string | undefined;
  /** The source address (login attempts are limited per address). */
  readonly address: string;
  /** The browser reached the console over HTTPS (its own TLS, or a TLS proxy's public origin). */
  readonly secure: boolean;
}

export interface Route {
  readonly method: 'GET' | 'POST';
  readonly path: RegExp;
  /** false only for login, logout and the session probe. */
  readonly auth: boolean;
  readonly handle: (ctx: RequestContext, params: readonly string[]) => Promise<Answer>;
}

/** The server's default authority: for proxy-activate, and for mak-usage when it has an admin token. */
export type DefaultAuthority = AuthorityConnection & { readonly adminToken?: string };

export interface ApiDeps {
  readonly console: VolumeConsole;
  readonly clock: Clock;
  readonly sessions: SessionStore;
  readonly limiter: LoginLimiter;
  /** Failed logins per account, whatever the address. */
  readonly accounts: AccountLimiter;
  readonly jobs: JobRunner;
  readonly authority: DefaultAuthority | undefined;
  readonly log: (line: string) => void;
}

/** zod's first issue as "field: what is wrong" (the field path, or "body"). */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length ? issue.path.join('.') : 'body';
  throw new WebError('BODY_INVALID', `${where}: ${issue?.message ?? 'invalid'}`);
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null || text === '') return fallback;
  if (!/^\d{1,7}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new WebError('QUERY_INVALID', `${name}: a whole number from ${min} to ${max}, got "${text.slice(0, 20)}"`);
  }
  return Number(text);
}

/** A machine reference from the UI: its id, name (any case) or address. */
function findMachine(machines: readonly MachineSummary[], ref: string): MachineSummary | undefined {
  const lower = ref.toLowerCase();
  return (
    machines.find((m) => String(m.id) === ref) ??
    machines.find((m) => m.name.toLowerCase() === lower) ??
    machines.find((m) => m.address === ref)
  );
}

/** Never echo a key: whatever the message says, the key's text is cut to its last five. */
function redactKey(err: unknown, key: string): unknown {
  if (!(err instanceof ConsoleError)) return err;
  const compact = key.replace(/[-\s]/g, '');
  if (compact.length < 10) return err;
  let message = err.message;
  for (const secret of [key, compact]) message = message.split(secret).join(`…${compact.slice(-5)}`);
  return message === err.message ? err : new ConsoleError(err.code, message, err.agentCode);
}

export function apiRoutes(deps: ApiDeps): Route[] {
  const c = deps.console;
  // The UI pre-fills proxy activation with the default authority's origin (never its admin token).
  const defaultAuthority = deps.authority ? authorityOrigin(deps.authority.url) : null;
  const admin = deps.authority?.adminToken ? { ...deps.authority, adminToken: deps.authority.adminToken } : undefined;
  const sessionInfo = (user: string): Answers['session'] => ({
    user,
    authority: defaultAuthority,
    makCounters: admin !== undefined,
    role: 'admin',
  });
  const reportName = (name: string) => {
    if (!(REPORT_NAMES as readonly string[]).includes(name)) {
      throw new ConsoleError('REPORT_UNKNOWN', `no report "${name.slice(0, 100)}": choose ${REPORT_NAMES.join(', ')}`);
    }
    return name;
  };
  // A GET never calls out: mak-usage shows the counters as last read (POST /api/mak-counters).
  const report = async (name: string, url: URL) =>
    c.report(reportName(name), { days: intParam(url, 'days', 30, 0, 3650) });

  return [
    {
      method: 'POST',
      path: /^\/api\/login$/,
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
        deps.sessions.delete(ctx.sessionToken);
        const token = deps.sessions.create(who.user);
        deps.log(`login ${who.user} from ${ctx.address}`);
        return {
          status: 200,
          json: sessionInfo(who.user),
          headers: { 'set-cookie': sessionCookie(token, ctx.secure) },
        };
      },
    },
    {
      method: 'POST',
      path: /^\/api\/logout$/,
      auth: false,
      async handle(ctx) {
        deps.sessions.delete(ctx.sessionToken);
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
      path: /^\/api\/session$/,
      auth: true,
      async handle(ctx) {
        return { status: 200, json: sessionInfo((ctx.session as Session).user) };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/machines$/,
      auth: true,
      async handle() {
        return { status: 200, json: { machines: await c.listMachines(), total: 0, offset: 0 } satisfies Answers['machines'] };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/machines\/([^/]+)$/,
      auth: true,
      async handle(_ctx, [ref]) {
        const machine = findMachine(await c.listMachines(), ref as string);
        if (!machine) {
          throw new ConsoleError('MACHINE_NOT_FOUND', `no machine "${(ref as string).slice(0, 100)}" in the console`);
        }
        const history = await c.history(String(machine.id));
        return {
          status: 200,
          json: { machine, history: history.slice(-1000).reverse() } satisfies Answers['machine'],
        };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/keys$/,
      auth: true,
      async handle() {
        return { status: 200, json: { keys: await c.listKeys() } satisfies Answers['keys'] };
      },
    },
    {
      method: 'POST',
      path: /^\/api\/keys$/,
      auth: true,
      async handle(ctx) {
        const body = parseBody(keyRequest, ctx.body);
        try {
          return { status: 201, json: { key: await c.addKey(body.key, body.name) } satisfies Answers['keyAdded'] };
        } catch (err) {
          throw redactKey(err, body.key);
        }
      },
    },
    {
      method: 'GET',
      path: /^\/api\/operations$/,
      auth: true,
      async handle(ctx) {
        const limit = intParam(ctx.url, 'limit', 100, 1, 1000);
        const operations = (await c.operations(limit)).map((o) => ({ ...o, at: new Date(o.at).toISOString() }));
        return { status: 200, json: { operations, total: operations.length, offset: 0 } satisfies Answers['operations'] };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/reports\/([a-z-]+)\.csv$/,
      auth: true,
      async handle(ctx, [name]) {
        const r = await report(name as string, ctx.url);
        return {
          status: 200,
          text: toCsv(r.columns, r.rows),
          headers: {
            'content-type': 'text/csv; charset=utf-8',
            'content-disposition': `attachment; filename="volact-${r.report}.csv"`,
          },
        };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/reports\/([^/]+)$/,
      auth: true,
      async handle(ctx, [name]) {
        return { status: 200, json: { ...(await report(name as string, ctx.url)), labels: {}, total: 0, offset: 0 } satisfies Answers['report'] };
      },
    },
    {
      method: 'POST',
      path: /^\/api\/mak-counters$/,
      auth: true,
      async handle() {
        if (!admin) {
          throw new WebError(
            'AUTHORITY_NOT_CONFIGURED',
            'the console server has no authority admin token: start it with --authority URL --admin-token-file F',
          );
        }
        return { status: 200, json: { results: await c.refreshMakCounts(admin) } satisfies Answers['makCounters'] };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/charts$/,
      auth: true,
      async handle(ctx) {
        const days = intParam(ctx.url, 'days', 30, 1, 366);
        const states: Record<LicenceState | 'unknown', number> = {
          ...(Object.fromEntries(LICENCE_STATES.map((s) => [s, 0])) as Record<LicenceState, number>),
          unknown: 0,
        };
        for (const m of await c.listMachines()) states[m.state ?? 'unknown']++;
        const timeline = (await c.stateTimeline(days)).map((d) => ({ day: d.day, ...d.counts }));
        return { status: 200, json: { states, timeline } satisfies Answers['charts'] };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/jobs$/,
      auth: true,
      async handle() {
        return { status: 200, json: { jobs: deps.jobs.list() } satisfies Answers['jobs'] };
      },
    },
    {
      method: 'GET',
      path: /^\/api\/jobs\/([0-9a-f]{1,40})$/,
      auth: true,
      async handle(_ctx, [id]) {
        return { status: 200, json: deps.jobs.get(id as string) satisfies Answers['job'] };
      },
    },
    {
      method: 'POST',
      path: /^\/api\/jobs$/,
      auth: true,
      async handle(ctx) {
        const body = parseBody(jobRequest, ctx.body);
        const job = await startJob(deps, body, (ctx.session as Session).user);
        return { status: 202, json: { job } satisfies Answers['jobStarted'] };
      },
    },
  ];
}

async function startJob(deps: ApiDeps, body: JobRequest, user: string) {
  const c = deps.console;
  const op: JobOperation = body.operation;
  if (!('machines' in body) || (body.machines !== 'all' && !Array.isArray(body.machines))) {
    throw new WebError('BODY_INVALID', `operation: ${op} is not built yet (issue 15 scaffolding)`);
  }
  const all = await c.listMachines();
  let selection: MachineSelection;
  let total: number;
  if (body.machines === 'all') {
    selection = 'all';
    total = all.length;
  } else {
    const missing: string[] = [];
    const ids = new Set<string>();
    for (const ref of body.machines.map(String)) {
      const m = findMachine(all, ref);
      if (m) ids.add(String(m.id));
      else missing.push(ref.slice(0, 100));
    }
    if (missing.length) {
      throw new ConsoleError(
        'MACHINE_NOT_FOUND',
        `not in the console: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
      );
    }
    // By numeric id: the console resolves digits as an id first, so no name can shadow one.
    selection = [...ids];
    total = ids.size;
  }

  let detail: string | null = null;
  let run: (onProgress: Progress) => Promise<MachineResult[]>;
  switch (body.operation) {
    case 'refresh':
      run = (p) => c.refresh(selection, p);
      break;
    case 'install-key': {
      const wanted = body.key.toLowerCase();
      const key = (await c.listKeys()).find((k) => k.name.toLowerCase() === wanted);
      if (!key) {
        throw new ConsoleError(
          'KEY_NOT_FOUND',
          `no stored key named "${body.key.slice(0, 64)}": add it on the Keys page`,
        );
      }
      if (key.type === 'kms-host') {
        throw new ConsoleError('KEY_INVALID', `"${key.name}" is a KMS host key (${key.key}): it goes on a KMS host`);
      }
      detail = `${key.type} ${key.key} (${key.name})`;
      run = (p) => c.installKey(key.name, selection, p);
      break;
    }
    case 'activate': {
      const url = body.authority;
      if (url !== undefined) detail = authorityOrigin(url);
      run = (p) => c.activate(selection, url === undefined ? {} : { authority: url }, p);
      break;
    }
    case 'proxy-activate': {
      const base = deps.authority;
      const url = body.authority ?? base?.url;
      if (url === undefined) {
        throw new WebError('BODY_INVALID', 'authority: proxy-activate needs the authority’s URL');
      }
      detail = authorityOrigin(url);
      // The server's transport settings (proxy, CA, timeout) apply; its admin token never goes along.
      const connection: AuthorityConnection = {
        url,
        ...(base?.proxy ? { proxy: base.proxy } : {}),
        ...(base?.ca ? { ca: base.ca } : {}),
        ...(base?.timeoutMs === undefined ? {} : { timeoutMs: base.timeoutMs }),
      };
      run = (p) => c.proxyActivate(selection, connection, p);
      break;
    }
    case 'reactivate':
      run = (p) => c.reactivate(selection, p);
      break;
    default:
      throw new WebError('BODY_INVALID', `operation: ${op} is not built yet (issue 15 scaffolding)`);
  }
  return deps.jobs.start({ operation: op, user, detail, total, run });
}
