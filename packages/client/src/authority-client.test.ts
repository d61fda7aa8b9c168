import { describe, expect, it } from 'vitest';
import { authorityErrors } from '@volact/authority';
import { AUTHORITY_CODES } from './authority-client.js';

describe('the authority client', () => {
  it("passes on the authority's own codes: its list is the authority's catalogue", () => {
    expect([...AUTHORITY_CODES].sort()).toEqual(Object.keys(authorityErrors).sort());
  });
});
