/**
 * Test support (only through `@volact/authority/testing`): a SoftHSM2 token from Debian's
 * `softhsm2` package, in a temporary folder (its own softhsm2.conf and token directory),
 * initialised with a label, a security-officer PIN and a user PIN. No fallback: a machine
 * without SoftHSM2 fails the tests with the fix to run (scripts/test.sh installs it).
 *
 * SoftHSM2 finds its configuration through SOFTHSM2_CONF in the environment of the process that
 * loads it, read when the module is initialised. Tests run in one process (a vitest fork per
 * file), so by default this sets SOFTHSM2_CONF in this process's environment (node writes it to
 * the real environment, where the C library reads it) and cleanup() puts the old value back.
 * One test SoftHSM per process at a time; `env` is for child processes (the CLI).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestSoftHsm {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly soPin: string;
  /** The slot number SoftHSM reassigned the initialised token to (decimal, as in slot-id=). */
  readonly slot: string;
  /** A file (0600) holding the user PIN, for pin-source=file:…. */
  readonly pinFile: string;
  readonly dir: string;
  /** `pkcs11:token=<label>;module-path=…;pin-source=file:…` (append `;object=…`). */
  readonly uri: string;
  /** SOFTHSM2_CONF, for child processes. */
  readonly env: { SOFTHSM2_CONF: string };
  /** Another token in the same SoftHSM (for "absent token" and "wrong token" tests). */
  initToken(label: string, pin: string): string;
  cleanup(): void;
}

const MODULE_PATHS = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'];

export function startTestSoftHsm(
  options: { tokenLabel?: string; pin?: string; soPin?: string; setProcessEnv?: boolean } = {},
): TestSoftHsm {
  const modulePath = MODULE_PATHS.find((p) => existsSync(p));
  if (!modulePath || !existsSync('/usr/bin/softhsm2-util')) {
    throw new Error('SoftHSM2 is not installed: `apt-get install -y softhsm2` (scripts/test.sh does this)');
  }
  const tokenLabel = options.tokenLabel ?? 'volact-test';
  const pin = options.pin ?? '4711-test-pin';
  const soPin = options.soPin ?? '0815-test-so-pin';
  const dir = mkdtempSync(join(tmpdir(), 'volact-softhsm-'));
  mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const env = { SOFTHSM2_CONF: conf };
  const initToken = (label: string, userPin: string): string => {
    const out = execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin],
      { env: { ...process.env, ...env }, encoding: 'utf8', stdio: 'pipe', timeout: 30_000 },
    );
    const slot = /reassigned to slot (\d+)/.exec(out)?.[1];
    if (!slot) throw new Error(`softhsm2-util --init-token said: ${out}`);
    return slot;
  };
  const slot = initToken(tokenLabel, pin);
  const pinFile = join(dir, 'user.pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  const setEnv = options.setProcessEnv ?? true;
  const before = process.env.SOFTHSM2_CONF;
  if (setEnv) process.env.SOFTHSM2_CONF = conf;
  return {
    modulePath,
    tokenLabel,
    pin,
    soPin,
    slot,
    pinFile,
    dir,
    uri: `pkcs11:token=${encodeURIComponent(tokenLabel)};module-path=${modulePath};pin-source=file:${pinFile}`,
    env,
    initToken,
    cleanup() {
      if (setEnv) {
        if (before === undefined) delete process.env.SOFTHSM2_CONF;
        else process.env.SOFTHSM2_CONF = before;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
