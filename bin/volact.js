#!/usr/bin/env node
// The `volact` command: the built CLI package (run `npm run build` after changing sources).
import { spawn } from 'node:child_process';

const [group, command] = process.argv.slice(2);
const hostServe = group === 'host' && command === 'serve';
// Only `host serve` needs the KMS host's flags: the other commands do not load the KMS host.
const missing = hostServe
  ? (await import('../packages/kms-host/dist/index.js')).HOST_NODE_FLAGS.filter(
      (flag) => !process.execArgv.includes(flag),
    )
  : [];
if (hostServe && missing.length > 0) {
  // The KMS host daemon runs with the node flags it was measured with (see bench/): V8 reads
  // them only at start, so the daemon is this command again in a node started with them.
  // The IPC channel ties the daemon's life to this launcher's: when the launcher dies, even
  // by SIGKILL, the channel closes and the daemon stops cleanly (it must not keep the port).
  const child = spawn(process.execPath, [...process.execArgv, ...missing, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 128 + 15 : 1);
  });
} else {
  if (hostServe && process.channel) {
    // Started by the launcher above: its death (the channel closing) is a stop request, handled
    // like SIGTERM (the window is written, the DNS records removed). Unref'd: the channel alone
    // must not keep a finished command alive.
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  }
  // Loads only the command group the command line names (packages/cli/src/launch.ts).
  const { launch } = await import('../packages/cli/dist/launch.js');
  await launch(process.argv);
}
