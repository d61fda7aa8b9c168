import { ConsoleError } from '../errors.js';
import type { ApiDeps, Route } from './api.js';
import { findMachine, parseBody, parseQuery } from './api.js';
import {
  addMachinesRequest,
  confirmationRequest,
  keyRequest,
  machinesQuery,
  removeMachinesRequest,
  type Answers,
} from './contract.js';
import { WebError } from './errors.js';

/** Never echo a key: whatever the message says, the key's text is cut to its last five. */
function redactKey(err: unknown, key: string): unknown {
  if (!(err instanceof ConsoleError)) return err;
  const compact = key.replace(/[-\s]/g, '');
  if (compact.length < 10) return err;
  let message = err.message;
  for (const secret of [key, compact]) message = message.split(secret).join(`…${compact.slice(-5)}`);
  return message === err.message ? err : new ConsoleError(err.code, message, err.agentCode);
}

/** Machines (a page, one with its history, add, remove, a phone confirmation ID) and keys. */
export function machineRoutes(deps: ApiDeps): Route[] {
  const c = deps.console;
  return [
    {
      method: 'GET',
      path: '/api/machines',
      auth: true,
      async handle(ctx) {
        const query = parseQuery(machinesQuery, ctx.url);
        const page = await c.pageMachines(query);
        return { status: 200, json: { ...page, offset: query.offset } satisfies Answers['machines'] };
      },
    },
    {
      method: 'GET',
      path: '/api/machines/:ref',
      auth: true,
      async handle(_ctx, { ref }) {
        const machine = await findMachine(c, ref as string);
        const history = await c.history(String(machine.id));
        return {
          status: 200,
          json: { machine, history: history.slice(-1000).reverse() } satisfies Answers['machine'],
        };
      },
    },
    {
      method: 'POST',
      path: '/api/machines',
      auth: true,
      async handle(ctx) {
        const body = parseBody(addMachinesRequest, ctx.body);
        if (body.name !== undefined && body.addresses.length !== 1) {
          throw new WebError('BODY_INVALID', `name: only with one address (${body.addresses.length} given)`);
        }
        const machines = await c.addMachines(
          body.addresses,
          body.token,
          body.name === undefined ? undefined : [body.name],
        );
        return { status: 201, json: { machines } satisfies Answers['machinesAdded'] };
      },
    },
    {
      method: 'POST',
      path: '/api/machines/remove',
      auth: true,
      async handle(ctx) {
        const body = parseBody(removeMachinesRequest, ctx.body);
        // By id: the console resolves digits as an id first, so no name can shadow one.
        const ids = [];
        for (const ref of body.machines) ids.push(String((await findMachine(c, String(ref))).id));
        const removed = await c.removeMachines([...new Set(ids)]);
        return { status: 200, json: { removed } satisfies Answers['machinesRemoved'] };
      },
    },
    {
      method: 'POST',
      path: '/api/machines/:ref/confirmation',
      auth: true,
      async handle(ctx, { ref }) {
        const { confirmationId } = parseBody(confirmationRequest, ctx.body);
        const machine = await findMachine(c, ref as string);
        const result = await c.installConfirmationId(String(machine.id), confirmationId);
        return { status: 200, json: { result } satisfies Answers['confirmationInstalled'] };
      },
    },
    {
      method: 'GET',
      path: '/api/keys',
      auth: true,
      async handle() {
        return { status: 200, json: { keys: await c.listKeys() } satisfies Answers['keys'] };
      },
    },
    {
      method: 'POST',
      path: '/api/keys',
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
  ];
}
