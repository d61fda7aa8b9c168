import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentClient, ConsoleError } from '@volact/console';
import { reportError } from '../../packages/cli/src/output.js';

/** What a rogue agent puts in its own error: an OSC that would retitle the operator's terminal. */
const PWNED = '\x1b]0;pwned\x07';

describe('console errors on the terminal', () => {
  let agent: Server;
  let address: string;

  beforeAll(async () => {
    agent = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: `NOPE${PWNED}`, message: `denied ${PWNED}here\r\x1b[2Jnow` } }));
    });
    await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(agent.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => agent.close(() => resolve()));
  });

  const refusal = async (): Promise<ConsoleError> => {
    const err = await new AgentClient(address, 'a-token-of-sixteen-chars').probe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('AGENT_REFUSED');
    return err as ConsoleError;
  };

  const captured = (json: boolean, err: unknown) => {
    let stderr = '';
    let stdout = '';
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
    try {
      return { code: reportError(err, json), stderr, stdout };
    } finally {
      e.mockRestore();
      o.mockRestore();
    }
  };

  it("reportError prints an agent's refusal without its escape sequences; --json keeps them escaped", async () => {
    const err = await refusal();
    expect(err.message).toContain(PWNED); // as the agent said it: stripped only where it meets a terminal

    const text = captured(false, err);
    expect(text.code).toBe(1);
    // eslint-disable-next-line no-control-regex
    expect(text.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(text.stderr).toBe(`error AGENT_REFUSED: agent ${address}: NOPE: denied herenow\n`);

    const json = captured(true, err);
    expect(json.stdout).toContain('\\u001b]0;pwned\\u0007');
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'AGENT_REFUSED', message: err.message } });
  });

  it('a message of several lines keeps its line breaks, each line printable', () => {
    const text = captured(false, new Error(`first ${PWNED}line\nsecond\x07 line`));
    expect(text.stderr).toBe('error INTERNAL: first line\nsecond line\n');
  });
});
