import { describe, expect, it } from 'vitest';
import { leftmostRdn, unescapeDnValue } from './attributes.js';
import { checkDirectoryUrl } from './connection.js';
import { DEFAULT_CONTAINER, containerDn, entryDn, escapeDnValue, escapeFilterValue } from './dn.js';

describe('DN and filter escaping', () => {
  it.each([
    ['office-2024', 'office-2024'],
    ['a,b', 'a\\,b'],
    ['a+b=c', 'a\\+b\\=c'],
    ['"q"', '\\"q\\"'],
    ['back\\slash', 'back\\\\slash'],
    ['<a>;', '\\<a\\>\\;'],
    ['#lead', '\\#lead'],
    ['mid#dle', 'mid#dle'],
    [' both ', '\\ both\\ '],
    [' ', '\\ '],
    ['x\\ ', 'x\\\\\\ '],
    ['nul\0tab\t', 'nul\\00tab\\09'],
    ['é', 'é'],
  ])('escapes %j as %j (RFC 4514)', (value, escaped) => {
    expect(escapeDnValue(value)).toBe(escaped);
    expect(unescapeDnValue(escaped)).toBe(value);
  });

  it('reads hex pairs as UTF-8 and finds the leftmost RDN', () => {
    expect(unescapeDnValue('caf\\c3\\a9')).toBe('café');
    expect(leftmostRdn('cn=pc\\,01,ou=x,dc=corp')).toEqual({ type: 'cn', value: 'pc,01' });
    expect(leftmostRdn('ou=Activation Objects')).toEqual({ type: 'ou', value: 'Activation Objects' });
    expect(leftmostRdn('cn=a+sn=b,dc=x')).toBeUndefined();
  });

  it('escapes filter values (RFC 4515)', () => {
    expect(escapeFilterValue('pc-*(x)\\\0')).toBe('pc-\\2a\\28x\\29\\5c\\00');
  });

  it('builds entry and container DNs', () => {
    expect(entryDn({ base: 'dc=corp,dc=test' }, 'ao.1')).toBe(`cn=ao.1,${DEFAULT_CONTAINER},dc=corp,dc=test`);
    expect(containerDn({ base: ' dc=corp,dc=test ', container: 'ou=AO' })).toBe('ou=AO,dc=corp,dc=test');
  });

  it('normalises directory URLs to scheme, host and port', () => {
    expect(checkDirectoryUrl('ldap://127.0.0.1:3890/')).toBe('ldap://127.0.0.1:3890');
    expect(checkDirectoryUrl('ldaps://DC1.corp.example')).toBe('ldaps://DC1.corp.example');
    expect(checkDirectoryUrl('ldap://[::1]:389')).toBe('ldap://[::1]:389');
  });
});
