import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HOST_NODE_FLAGS } from './host-runtime.js';

describe('host runtime', () => {
  it('the volact binary runs node with the flags the host was measured with', () => {
    const shebang = readFileSync(new URL('../../../bin/volact.js', import.meta.url), 'utf8').split('\n')[0]!;
    expect(shebang.startsWith('#!/usr/bin/env -S node')).toBe(true);
    for (const flag of HOST_NODE_FLAGS) expect(shebang.split(' ')).toContain(flag);
  });
});
