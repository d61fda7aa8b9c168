import { CoreError } from './errors.js';

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * The URL of an authority API route. Requests to the authority carry secret keys: https only,
 * plain http only to this machine's loopback (tests, a local authority).
 */
export function authorityEndpoint(base: string, path: string): URL {
  let url: URL;
  try {
    url = new URL(path, base);
  } catch {
    throw new CoreError(
      'URL_INVALID',
      `--authority "${base.slice(0, 200)}" is not a URL (e.g. https://activation.example.com)`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new CoreError(
      'URL_INSECURE',
      `the authority URL must use https:// (plain http:// is allowed only to 127.0.0.1, ::1 or localhost), got ${url.origin}`,
    );
  }
  return url;
}
