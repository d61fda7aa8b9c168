import { describe, expect, it } from 'vitest';
import { ConsoleError, consoleErrors, type ConsoleErrorCode } from '../errors.js';
import { HTTP_STATUS, WebError, errorAnswer, webErrors, type WebErrorCode } from './errors.js';

describe('the HTTP status of each error code', () => {
  it('has one for every console and web code, and only for those', () => {
    // The table's type makes a missing code a compile error; this checks no stale code lingers.
    const codes = [...Object.keys(consoleErrors), ...Object.keys(webErrors)].sort();
    expect(Object.keys(HTTP_STATUS).sort()).toEqual(codes);
    for (const status of Object.values(HTTP_STATUS)) {
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it('answers each code with its status and message, whichever catalogue it is from', () => {
    for (const code of Object.keys(consoleErrors) as ConsoleErrorCode[]) {
      const answer = errorAnswer(new ConsoleError(code, `m-${code}`));
      expect(answer.status, code).toBe(HTTP_STATUS[code]);
      expect(answer.body).toEqual({ error: { code, message: `m-${code}` } });
    }
    for (const code of Object.keys(webErrors) as WebErrorCode[]) {
      expect(errorAnswer(new WebError(code, 'm')).status, code).toBe(HTTP_STATUS[code]);
    }
  });

  it('gives a caller the status of its own fault, not 500', () => {
    expect(errorAnswer(new ConsoleError('ADMIN_EXISTS', 'taken')).status).toBe(409);
    expect(errorAnswer(new ConsoleError('ADMIN_PASSWORD_INVALID', 'short')).status).toBe(400);
    expect(errorAnswer(new ConsoleError('MACHINE_NOT_FOUND', 'gone')).status).toBe(404);
  });

  it('hides the text of anything unexpected behind INTERNAL', () => {
    expect(errorAnswer(new Error('secret detail'))).toEqual({
      status: 500,
      body: { error: { code: 'INTERNAL', message: webErrors.INTERNAL } },
      headers: {},
    });
  });
});
