import { AuthorityError, type AuthorityErrorCode } from './errors.js';
import type { AuthorityStore } from './store.js';

/** Refuses a request before its decision: the refusal's audit row is written, then the error returned to throw. */
export type Refuse = (code: AuthorityErrorCode, message: string, last5?: string) => Promise<AuthorityError>;

/**
 * The refusals of one request (`action`, at `at`). A decision writes its own row in its
 * transaction; what is refused before it (a mistyped key, an unknown key) is written here.
 */
export function refusalsOf(store: AuthorityStore, action: string, at: number): Refuse {
  return async (code, message, last5) => {
    await store.audit({ at, action, result: code, keyLast5: last5, detail: message });
    return new AuthorityError(code, message);
  };
}
