import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (docs/portal.md "Webhooks"): header
 * `Volact-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, keyed with
 * the endpoint's whole secret (`whsec_…`, as UTF-8). The timestamp is signed with the body, so
 * a receiver that refuses a `t` too far from its clock refuses a replayed delivery.
 */

export const SIGNATURE_HEADER = 'Volact-Signature';
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

const mac = (secret: string, t: number, body: string | Buffer): string =>
  createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${t}.`)
    .update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body)
    .digest('hex');

/** The Volact-Signature header value for `body` sent at `nowMs`. */
export function signWebhook(secret: string, body: string | Buffer, nowMs: number): string {
  const t = Math.floor(nowMs / 1000);
  return `t=${t},v1=${mac(secret, t, body)}`;
}

/**
 * For receivers: true when `header` signs exactly `body` (the raw bytes received, before any
 * JSON parsing) with `secret`, at a time at most `toleranceSeconds` from `nowMs`. A missing or
 * malformed header, a tampered body, another secret or a replay outside the window: false.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | null | undefined,
  body: string | Buffer,
  nowMs: number,
  toleranceSeconds: number = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
): boolean {
  if (typeof header !== 'string' || header.length > 1024) return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2) as [string, string | undefined];
    if (k === 't' && v !== undefined && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/.test(v)) signatures.push(v);
  }
  if (t === undefined || signatures.length === 0) return false;
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(mac(secret, t, body), 'hex');
  return signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
}
