import { describe, expect, it } from 'vitest';
import { bulkConfirm } from './authority-client.js';
import { ConsoleError } from './errors.js';

describe('authority client', () => {
  it('refuses a plain-http authority through a proxy on another machine (keys would cross the network)', async () => {
    const proxy = { host: '10.0.0.1', port: 3128, authorization: null, display: 'http://10.0.0.1:3128' };
    const err = await bulkConfirm({ url: 'http://127.0.0.1:9', proxy }, ['1']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('AUTHORITY_URL_INVALID');
    expect((err as ConsoleError).message).toContain('must be https://');
  });
});
