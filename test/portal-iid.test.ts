import { beforeAll, describe, expect, it } from 'vitest';
import { CoreError, parseInstallationId } from '@volact/core';

interface IidModule {
  readonly IID_GROUPS: { readonly installation: number; readonly 'kms-host': number };
  checkDigit(position: number, data: string): number;
  groupProblem(position: number, text: string): string | null;
}
// The web app's module, outside the test project's files: loaded by path (vitest compiles it).
let web: IidModule;
beforeAll(async () => {
  web = (await import(new URL('../packages/authority/web/src/iid.ts', import.meta.url).href)) as IidModule;
});
const checkDigit = (position: number, data: string) => web.checkDigit(position, data);
const groupProblem = (position: number, text: string) => web.groupProblem(position, text);

/**
 * The phone operator's page checks each typed group in the browser with its own copy of the
 * digit-group check (packages/authority/web/src/iid.ts): it must agree with core's parser on
 * every group, right or wrong, or the page would mark a right group or pass a wrong one.
 */
function randomGroups(count: number, seed: number): string[] {
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2 ** 31);
  return Array.from({ length: count }, (_, i) => {
    const data = String(next() % 100000).padStart(5, '0');
    return `${data}${checkDigit(i + 1, data)}`;
  });
}

/** What core says about the IID's digits: null when every group's check digit is right. */
function coreGroupError(text: string): string | null {
  try {
    parseInstallationId(text);
    return null;
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    return err.code === 'DIGIT_GROUP_WRONG' ? err.message : null;
  }
}

describe("the phone page's per-group check agrees with core", () => {
  it('accepts the groups core accepts and names the same wrong group (13 and 20 groups)', () => {
    expect(web.IID_GROUPS).toEqual({ installation: 13, 'kms-host': 20 });
    for (const count of [web.IID_GROUPS.installation, web.IID_GROUPS['kms-host']]) {
      for (let seed = 1; seed <= 40; seed++) {
        const groups = randomGroups(count, seed);
        expect(groups.map((g, i) => groupProblem(i + 1, g))).toEqual(groups.map(() => null));
        expect(coreGroupError(groups.join('-'))).toBeNull();

        const at = seed % count;
        const g = groups[at] as string;
        const digit = seed % 6;
        const wrong = `${g.slice(0, digit)}${(Number(g[digit]) + 1 + (seed % 9)) % 10}${g.slice(digit + 1)}`;
        const typed = groups.map((x, i) => (i === at ? wrong : x));
        expect(groupProblem(at + 1, wrong)).toContain(`group ${at + 1} is wrong`);
        expect(coreGroupError(typed.join('-'))).toContain(`group ${at + 1} is wrong`);
      }
    }
  });

  it('catches two neighbouring data digits swapped and a group typed in the wrong place, as core does', () => {
    const groups = randomGroups(13, 7);
    for (const [i, g] of groups.entries()) {
      for (let d = 0; d < 5; d++) {
        const swapped = `${g.slice(0, d)}${g[d + 1]}${g[d]}${g.slice(d + 2)}`;
        if (swapped === g) continue;
        // Core's scheme guarantees the five data digits; a swap with the check digit may pass.
        if (d < 4) expect(groupProblem(i + 1, swapped)).not.toBeNull();
        const typed = groups.map((x, j) => (j === i ? swapped : x)).join('-');
        expect(groupProblem(i + 1, swapped) === null).toBe(coreGroupError(typed) === null);
      }
    }
    const [a, b] = [groups[2] as string, groups[3] as string];
    if (a !== b) {
      expect(groupProblem(3, b)).not.toBeNull();
      expect(groupProblem(4, a)).not.toBeNull();
    }
  });

  it('names a short group, a stray character and an empty box', () => {
    expect(groupProblem(2, '12345')).toBe('group 2 has 5 digits; it needs 6');
    expect(groupProblem(2, '12a456')).toBe('group 2 has a character that is not a digit');
    expect(groupProblem(5, '')).toBe('group 5 is empty');
  });
});
