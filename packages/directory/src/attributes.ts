import type { Entry } from 'ldapts';

/** The first value of an attribute of a search entry, matching its name case-insensitively. */
export function firstValue(entry: Entry, name: string): string | undefined {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key === undefined ? undefined : entry[key];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString('utf8');
}

/** A GeneralizedTime (`20250102030405Z`, `20250102030405.0Z`) as an ISO 8601 string. */
export function generalizedTimeToIso(text: string | undefined): string | undefined {
  const m = text ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,]\d+)?Z$/.exec(text) : null;
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.000Z`;
}

/** Undoes RFC 4514 escapes: a backslash before a character, and hex pairs (UTF-8 bytes). */
export function unescapeDnValue(value: string): string {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < value.length) {
    const hex = value[i] === '\\' ? /^[0-9a-fA-F]{2}/.exec(value.slice(i + 1)) : null;
    if (hex) {
      parts.push(Buffer.from([parseInt(hex[0], 16)]));
      i += 3;
      continue;
    }
    if (value[i] === '\\' && i + 1 < value.length) i += 1;
    const ch = String.fromCodePoint(value.codePointAt(i) ?? 0);
    parts.push(Buffer.from(ch, 'utf8'));
    i += ch.length;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** The attribute type and value of the leftmost RDN of a DN (`cn=pc-01,ou=x` → cn, pc-01). */
export function leftmostRdn(dn: string): { type: string; value: string } | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9-]*|[0-9.]+)\s*=((?:[^,+\\]|\\.)*)(?:,|$)/.exec(dn);
  if (!m) return undefined;
  return { type: m[1] as string, value: unescapeDnValue(m[2] as string) };
}
