import { authorityOrigin } from '../authority-client.js';
import { expandRange, parseMachineAddress } from '../addresses.js';
import { ConsoleError } from '../errors.js';
import { addressesFromDirectory } from '../ldap-discovery.js';
import type { DiscoveryProbe, MachineResult, MachineSelection, Progress } from '../results.js';
import type { ApiDeps, Route } from './api.js';
import { authorityFor, findMachine, parseBody, parseQuery } from './api.js';
import {
  jobQuery,
  jobRequest,
  machinesQuery,
  type Answers,
  type DiscoverRequest,
  type JobMachines,
  type JobRequest,
} from './contract.js';
import { WebError } from './errors.js';
import type { Job, JobRunOutput } from './jobs.js';
import type { Session } from './sessions.js';

/** The port agents listen on when a directory entry names only the computer (as the CLI). */
const DEFAULT_AGENT_PORT = 7390;
/** discover's `outcome` lists at most this many unmatched confirmations. */
const SKIPPED_SHOWN = 5;

/** Jobs: start one (any operation), list them, one with a page of its results. */
export function jobRoutes(deps: ApiDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/jobs',
      auth: true,
      async handle() {
        return { status: 200, json: { jobs: await deps.jobs.list() } satisfies Answers['jobs'] };
      },
    },
    {
      method: 'GET',
      path: '/api/jobs/:id',
      auth: true,
      async handle(ctx, { id }) {
        if (!/^[0-9a-f]{1,40}$/.test(id as string)) {
          throw new WebError('JOB_NOT_FOUND', `no job "${(id as string).slice(0, 40)}"`);
        }
        const { offset, limit } = parseQuery(jobQuery, ctx.url);
        return { status: 200, json: (await deps.jobs.get(id as string, offset, limit)) satisfies Answers['job'] };
      },
    },
    {
      method: 'POST',
      path: '/api/jobs',
      auth: true,
      // The confirmation file of apply-confirmations may be large; every other job body is small.
      upload: true,
      uploadFor: (body) => (body as { operation?: unknown } | undefined)?.operation === 'apply-confirmations',
      async handle(ctx) {
        const body = parseBody(jobRequest, ctx.body);
        const job = await startJob(deps, body, (ctx.session as Session).user);
        return { status: 202, json: { job } satisfies Answers['jobStarted'] };
      },
    },
  ];
}

/** The machines a job works on, by id (digits resolve as an id first: no name can shadow one). */
async function select(deps: ApiDeps, machines: JobMachines): Promise<{ selection: MachineSelection; total: number }> {
  const c = deps.console;
  if (machines === 'all') {
    const { total } = await c.pageMachines(machinesQuery.parse({ limit: 1 }));
    return { selection: 'all', total };
  }
  let ids: string[];
  if (Array.isArray(machines)) {
    const missing: string[] = [];
    const found = new Set<string>();
    for (const ref of machines.map(String)) {
      try {
        found.add(String((await findMachine(c, ref)).id));
      } catch (err) {
        if (!(err instanceof ConsoleError) || err.code !== 'MACHINE_NOT_FOUND') throw err;
        missing.push(ref.slice(0, 100));
      }
    }
    if (missing.length) {
      throw new ConsoleError(
        'MACHINE_NOT_FOUND',
        `not in the console: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', …' : ''}`,
      );
    }
    ids = [...found];
  } else {
    ids = await c.machineIds(machines.filter);
    // An empty selection would mean every machine to the operations: refuse it instead.
    if (ids.length === 0) throw new ConsoleError('MACHINE_NOT_FOUND', 'no machine matches the filter');
  }
  return { selection: ids, total: ids.length };
}

/** discover's addresses: a range, a list, or a directory's computers (exactly one). */
async function discoverAddresses(d: DiscoverRequest): Promise<string[]> {
  const sources = [d.range, d.addresses, d.ldap].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new WebError('BODY_INVALID', 'discover: give one of range, addresses or ldap');
  let addresses: string[];
  if (d.range !== undefined) addresses = expandRange(d.range);
  else if (d.addresses !== undefined) addresses = d.addresses.map((a) => parseMachineAddress(a));
  else {
    const ldap = d.ldap as NonNullable<DiscoverRequest['ldap']>;
    if ((ldap.bindDn === undefined) !== (ldap.password === undefined)) {
      throw new WebError('BODY_INVALID', 'discover.ldap.password: bindDn and password go together');
    }
    const found = await addressesFromDirectory(
      { url: ldap.url, ...(ldap.bindDn && ldap.password ? { bindDn: ldap.bindDn, password: ldap.password } : {}) },
      { base: ldap.base, ...(ldap.filter ? { filter: ldap.filter } : {}) },
      ldap.agentPort ?? DEFAULT_AGENT_PORT,
    );
    addresses = found.addresses;
  }
  return d.https ? addresses.map((a) => (a.startsWith('https://') ? a : `https://${a}`)) : addresses;
}

/** One probed address as a job row: an agent found, one refusing, or nothing answering (AGENT_UNREACHABLE). */
function discoveryRow(probe: DiscoveryProbe): MachineResult {
  const { found, refused } = probe;
  if (found) {
    return {
      machine: found.machine,
      displayName: found.displayName,
      address: found.address,
      ok: true,
      code: null,
      message: found.added ? 'added' : 'already in the console',
      state: found.state,
      method: null,
    };
  }
  return {
    machine: probe.address,
    displayName: probe.address,
    address: probe.address,
    ok: false,
    code: refused?.code ?? 'AGENT_UNREACHABLE',
    message: refused?.message ?? 'nothing answered in time',
    state: null,
    method: null,
  };
}

/** Validates a job, then starts it (202): what a request can get wrong is refused before it runs. */
async function startJob(deps: ApiDeps, body: JobRequest, user: string): Promise<Job> {
  const c = deps.console;
  let detail: string | null = null;
  let total: number;
  let run: (onProgress: Progress) => Promise<JobRunOutput>;
  const results = (p: Promise<MachineResult[]>) => p.then((r) => ({ results: r }));

  if (body.operation === 'discover') {
    const addresses = await discoverAddresses(body.discover);
    total = addresses.length;
    detail = body.discover.range ?? (body.discover.ldap ? body.discover.ldap.url : `${addresses.length} addresses`);
    run = async (p) => {
      // A row per address as soon as it is probed: the progress bar moves with the sweep.
      let done = 0;
      const r = await c.discover(addresses, body.discover.token, {
        onProbe: (_address, _found, probe) => p(discoveryRow(probe), ++done, addresses.length),
      });
      return {
        results: [],
        outcome: `probed ${r.probed}: ${r.found.length} agents, ${r.refused.length} refused, ${r.silent} silent`,
      };
    };
  } else if (body.operation === 'apply-confirmations') {
    total = 0;
    run = async (p) => {
      const r = await c.applyConfirmationFile(body.file, p);
      const shown = r.skipped.slice(0, SKIPPED_SHOWN).map((s) => `…${s.installationId.slice(-5)}: ${s.reason}`);
      return {
        results: r.results,
        outcome: r.skipped.length
          ? `${r.skipped.length} skipped: ${shown.join('; ')}${r.skipped.length > SKIPPED_SHOWN ? '; …' : ''}`
          : `${r.results.length} confirmation IDs applied or refused, none skipped`,
      };
    };
  } else {
    // What the request can get wrong (a key, an authority) first, then which machines.
    let selection: MachineSelection = [];
    switch (body.operation) {
      case 'refresh':
        run = (p) => results(c.refresh(selection, p));
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
        run = (p) => results(c.installKey(key.name, selection, p));
        break;
      }
      case 'activate': {
        const url = body.authority;
        if (url !== undefined) detail = authorityOrigin(url);
        run = (p) => results(c.activate(selection, url === undefined ? {} : { authority: url }, p));
        break;
      }
      case 'proxy-activate': {
        const connection = authorityFor(deps, body.authority, 'proxy-activate');
        detail = authorityOrigin(connection.url);
        run = (p) => results(c.proxyActivate(selection, connection, p));
        break;
      }
      case 'reactivate':
        run = (p) => results(c.reactivate(selection, p));
        break;
      case 'set-kms-host':
        detail = body.kmsHost ?? 'cleared: DNS discovery';
        run = (p) => results(c.setKmsHost(selection, body.kmsHost, p));
        break;
      case 'set-kms-host-caching': {
        const { enabled } = body;
        detail = enabled ? 'caching on' : 'caching off';
        run = (p) => results(c.setKmsHostCaching(selection, enabled, p));
        break;
      }
      case 'rotate-token':
        run = (p) => results(c.rotateTokens(selection, p));
        break;
      case 'enrol':
        if (body.token !== undefined) detail = 'with a new enrolment token';
        run = (p) => results(c.reenrol(selection, body.token, p));
        break;
      case 'collect-iids':
        run = async (p) => {
          const r = await c.collectInstallationIds(selection, { user }, p);
          return { results: r.results, proxyFileId: r.fileId };
        };
        break;
    }
    ({ selection, total } = await select(deps, body.machines));
  }

  return deps.jobs.start({ operation: body.operation, user, detail, total, params: jobParams(body), run });
}

/** What the job was asked, for its record (the runner drops secrets; a file is cut to its size). */
function jobParams(body: JobRequest): Record<string, unknown> {
  if (body.operation === 'apply-confirmations')
    return { operation: body.operation, file: `${body.file.length} characters` };
  return body;
}
