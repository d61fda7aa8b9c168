/**
 * The authority's REST API from the browser: same origin, the session cookie goes by itself;
 * every mutating call carries `X-Volact-Csrf: 1`, a header no cross-site form can send.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Listener = () => void;
let onUnauthenticated: Listener = () => undefined;

/** Called when a call answers 401 (the session expired or was signed out): the app shows sign-in. */
export function setUnauthenticatedHandler(listener: Listener): void {
  onUnauthenticated = listener;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const mutating = method !== 'GET';
  if (mutating) headers['x-volact-csrf'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
    // Signed out or expired: sign in again. A wrong re-entered password (PASSWORD_WRONG, also
    // 401) keeps the session.
    const code = error?.code ?? '';
    if (res.status === 401 && path !== '/v1/session' && (code === 'UNAUTHORIZED' || code === 'SESSION_EXPIRED')) {
      onUnauthenticated();
    }
    throw new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `HTTP ${res.status}`);
  }
  return data as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body: unknown = {}): Promise<T> => call<T>('POST', path, body);
export const put = <T>(path: string, body: unknown): Promise<T> => call<T>('PUT', path, body);
export const patch = <T>(path: string, body: unknown): Promise<T> => call<T>('PATCH', path, body);
export const del = <T>(path: string): Promise<T> => call<T>('DELETE', path);

/** A query string of the given parameters, empty ones left out (`?a=1&b=x` or ''). */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A path segment, escaped. */
export const seg = (text: string): string => encodeURIComponent(text);

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
