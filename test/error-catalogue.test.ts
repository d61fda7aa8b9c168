import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HostErrorCode, coreErrorCodes } from '@volact/core';
import { authorityErrors } from '@volact/authority';
import { kmsHostErrors } from '@volact/kms-host';
import { clientErrors } from '@volact/client';
import { directoryErrors } from '@volact/directory';
import { consoleErrors, webErrors } from '@volact/console';
import { plannerErrors } from '@volact/planner';
import { simulatorErrors } from '@volact/simulator';
import { cliErrors } from '@volact/cli';

/** docs/errors.md and the error catalogues in the code must list the same codes (fastify's habit). */
const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

function section(title: string): Set<string> {
  const start = doc.indexOf(`\n## ${title}\n`);
  expect(start, `docs/errors.md has a "## ${title}" section`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf('\n## ', start + 4);
  const body = doc.slice(start, end === -1 ? undefined : end);
  return new Set([...body.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1] as string));
}

const catalogues: [string, string[]][] = [
  ['core', Object.keys(coreErrorCodes)],
  ['authority', Object.keys(authorityErrors)],
  ['kms-host', Object.keys(kmsHostErrors)],
  ['KMS wire error codes', Object.keys(HostErrorCode)],
  ['client', Object.keys(clientErrors)],
  ['directory', Object.keys(directoryErrors)],
  ['console', Object.keys(consoleErrors)],
  ['console web', Object.keys(webErrors)],
  ['planner', Object.keys(plannerErrors)],
  ['simulator', Object.keys(simulatorErrors)],
  ['cli', Object.keys(cliErrors)],
];

describe('docs/errors.md', () => {
  it.each(catalogues)('lists exactly the %s codes', (title, codes) => {
    expect([...section(title)].sort()).toEqual([...codes].sort());
  });
});
