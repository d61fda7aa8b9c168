import type { Command } from 'commander';
import {
  AuthorityError,
  type AuthorityOptions,
  type CrashPoint,
  type KeyRingStatus,
  type RotationStep,
} from '@volact/authority';
import { CliError, printJson } from '../output.js';
import type { Run } from '../runtime.js';
import { openAuthority, targetOptions, type TargetOptions } from './authority-target.js';

const STEPS: readonly RotationStep[] = ['prepare', 'publish', 'switch', 'retire'];

/**
 * Tests only: `VOLACT_TEST_CRASH_AT=<point>` makes a rotation step kill its own process
 * (SIGKILL, as kill -9) at that point: after the key file is written, inside the transaction
 * before its commit, after the commit. The crash test runs the steps so and checks that
 * nothing half-rotates (test/e2e/root-rotation-crash.test.ts).
 */
function crashHook(): Pick<AuthorityOptions, 'crashAt'> {
  const at = process.env.VOLACT_TEST_CRASH_AT;
  if (!at) return {};
  return {
    crashAt: (point: CrashPoint) => {
      if (point === at) process.kill(process.pid, 'SIGKILL');
    },
  };
}

function statusText(s: KeyRingStatus): string {
  const lines = ['roots:'];
  for (const r of s.roots) {
    const validity = `valid from ${r.validFrom}${r.validUntil ? ` until ${r.validUntil}` : ''}`;
    const held =
      r.state === 'retired'
        ? 'key destroyed'
        : r.heldHere
          ? `key ${r.where}`
          : r.signer === 'file'
            ? `key NOT on this node: copy ${r.where}`
            : `key NOT reachable from this node: ${r.where}`;
    lines.push(`  #${r.ordinal} ${r.keyId} ${r.state.padEnd(9)} ${validity}; ${held}`);
  }
  lines.push('online keys:');
  for (const k of s.onlineKeys) {
    lines.push(
      `  #${k.sequence} ${k.keyId} ${k.state.padEnd(9)} CID key index ${k.keyIndex}, certified by ${k.issuerKeyId} from ${k.validFrom} until ${k.validUntil}`,
    );
  }
  lines.push(
    `rotation: ${s.rotation.lastStep ? `last step ${s.rotation.lastStep}` : 'none yet'}; next step: ${s.rotation.nextStep} (\`volact authority root rotate --step ${s.rotation.nextStep}\`)`,
  );
  return lines.join('\n');
}

/**
 * `volact authority root status|rotate` and `volact authority online-key rotate`: the key ring
 * (docs/trust.md "Rotation ceremony", docs/authority.md "Root rotation").
 */
export function registerAuthorityRoot(authority: Command, run: Run): void {
  const open = (o: TargetOptions) => openAuthority(o, crashHook());

  const root = authority.command('root').description('the root keys: status and the rotation ceremony');
  targetOptions(
    root
      .command('status')
      .description('roots (key IDs, states, validity, where their keys are), online keys, the next rotation step'),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }) => {
        const a = open(o);
        try {
          const status = await a.rootStatus();
          if (o.json) printJson(status);
          else console.log(statusText(status));
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(
    root
      .command('rotate')
      .description('one step of the root rotation: prepare, publish, switch, retire (each idempotent, in order)'),
  )
    .requiredOption('--step <step>', `the step: ${STEPS.join(', ')}`)
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { step: string; json?: boolean }) => {
        if (!(STEPS as readonly string[]).includes(o.step)) {
          throw new CliError('OPTION_INVALID', `--step must be one of ${STEPS.join(', ')}, got "${o.step}"`);
        }
        const a = open(o);
        try {
          const result = await a.rotateRoot(o.step as RotationStep);
          if (o.json) printJson(result);
          else console.log(`${result.message}\nnext step: ${result.nextStep}`);
        } catch (err) {
          // The next step goes with the refusal, for a script to run it.
          if (o.json && err instanceof AuthorityError && err.code === 'ROOT_ROTATION_OUT_OF_ORDER') {
            printJson({
              error: { code: err.code, message: err.message, nextStep: (err as { nextStep?: string }).nextStep },
            });
            process.exitCode = 1;
            return;
          }
          throw err;
        } finally {
          await a.close();
        }
      }),
    );

  targetOptions(
    authority
      .command('online-key')
      .description('the online key that signs confirmation IDs (delegated by the root)')
      .command('rotate')
      .description(
        'the next online key signs from now on, a new next is certified by the current root; the old one stays verifiable',
      ),
  )
    .option('--json', 'print JSON')
    .action(
      run(async (o: TargetOptions & { json?: boolean }) => {
        const a = open(o);
        try {
          const r = await a.rotateOnlineKey();
          if (o.json) printJson(r);
          else {
            console.log(
              `online key #${r.onlineKey.sequence} ${r.onlineKey.keyId} signs from now on (CID key index ${r.onlineKey.keyIndex}, certified by ${r.onlineKey.issuerKeyId} until ${r.onlineKey.validUntil})` +
                (r.previous
                  ? `\nonline key #${r.previous.sequence} ${r.previous.keyId} signs no more; what it signed stays valid`
                  : ''),
            );
          }
        } finally {
          await a.close();
        }
      }),
    );
}
