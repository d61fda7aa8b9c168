import type { Command } from 'commander';
import { VolumeConsole, acquireServeLock, startConsoleServer, type ConsoleServerOptions } from '@volact/console';
import { CliError } from '../output.js';
import { parseListen, readTokenFile } from '../options.js';
import { waitForShutdown, type Run } from '../runtime.js';
import { loadServeTls, loadServeTlsAtStart } from './authority-serve-tls.js';
import { authorityConnection, consoleStoreOptions, proxyOptions, type DataDirOptions } from './console.js';

function parsePublicOrigin(text: string): string {
  let url: URL | null = null;
  try {
    url = new URL(text);
  } catch {
    url = null;
  }
  if (!url || !/^https?:$/.test(url.protocol) || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new CliError('OPTION_INVALID', `--public-origin ${text.slice(0, 100)} is not https://HOST[:PORT]`);
  }
  return url.origin;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

interface ServeOptions extends DataDirOptions {
  assetsDir?: string;
  listen: string;
  authority?: string;
  adminTokenFile?: string;
  proxy?: string;
  proxyUser?: string;
  proxyPasswordFile?: string;
  publicOrigin?: string[];
  trustForwardedFor?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * `volact console serve`: the web UI and its JSON API from this one process (the built assets
 * of packages/console/web-dist), until SIGINT or SIGTERM.
 */
export function registerConsoleServe(consoleCommand: Command, run: Run): void {
  consoleStoreOptions(
    proxyOptions(
      consoleCommand
        .command('serve')
        .description(
          'serve the web UI (machines, bulk actions, reports, keys) and its JSON API; log in as a console admin',
        )
        .option('--listen <host:port>', 'address to listen on (port 0 picks a free one)', '127.0.0.1:8390')
        .option('--authority <url>', 'the default authority for proxy activation (and mak-usage with a token)')
        .option(
          '--admin-token-file <file>',
          "an organisation's read token (org:<id>:read) or the authority's admin token: mak-usage reads the MAK counters with it",
        )
        .option(
          '--public-origin <url...>',
          'behind a TLS reverse proxy: the origin(s) browsers use (https://console.example); logins and changes must come from one',
        )
        .option(
          '--tls-cert <file>',
          'serve HTTPS with this certificate (PEM; with --tls-key): the session cookie is then Secure',
        )
        .option('--tls-key <file>', 'the private key of --tls-cert (PEM, unencrypted)')
        .option(
          '--assets-dir <dir>',
          'serve the web UI built into this folder (default: packages/console/web-dist, as `npm run build:web` makes it)',
        )
        .option(
          '--trust-forwarded-for',
          "behind a reverse proxy: the client's address is the last X-Forwarded-For entry (login limits per client)",
        ),
    ),
  ).action(
    run(async (o: ServeOptions) => {
      const listen = parseListen(o.listen, '--listen');
      if (
        o.authority === undefined &&
        [o.adminTokenFile, o.proxy, o.proxyUser, o.proxyPasswordFile].some((x) => x !== undefined)
      ) {
        throw new CliError(
          'OPTION_INVALID',
          '--admin-token-file and --proxy… are for the authority: give --authority too',
        );
      }
      const authority: ConsoleServerOptions['authority'] =
        o.authority === undefined
          ? undefined
          : {
              ...authorityConnection({ ...o, authority: o.authority }),
              ...(o.adminTokenFile === undefined
                ? {}
                : { adminToken: readTokenFile(o.adminTokenFile, '--admin-token-file') }),
            };
      // Checked before anything opens: a wrong file stops the command, naming it.
      const tls = loadServeTlsAtStart(o.tlsCert, o.tlsKey);
      const c = await VolumeConsole.connect(o.dataDir, o.db === undefined ? {} : { databaseUrl: o.db });
      // One server per data directory: a second would mark the first one's running job
      // interrupted and run its own beside it (CONSOLE_SERVED names the first one's pid).
      let lock;
      try {
        lock = acquireServeLock(o.dataDir, Date.now());
      } catch (err) {
        await c.close();
        throw err;
      }
      let server;
      try {
        server = await startConsoleServer(c, {
          listen,
          ...(authority ? { authority } : {}),
          ...(o.publicOrigin ? { publicOrigins: o.publicOrigin.map((u) => parsePublicOrigin(u)) } : {}),
          ...(o.trustForwardedFor ? { trustForwardedFor: true } : {}),
          ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
          ...(o.assetsDir === undefined ? {} : { assetsDir: o.assetsDir }),
          log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
        });
      } catch (err) {
        lock.release();
        await c.close();
        throw err;
      }
      process.stdout.write(`console at ${server.url}\n`);
      if ((await c.countAdmins()) === 0) {
        process.stderr.write(
          `warning: no console user can log in yet: \`volact console admin add --data-dir ${o.dataDir} --user NAME --password-file F\`\n`,
        );
      }
      if (o.publicOrigin && !o.trustForwardedFor) {
        process.stderr.write(
          "warning: --public-origin without --trust-forwarded-for: behind a reverse proxy every client has the proxy's address, so the login limits per address count all clients as one; give --trust-forwarded-for when the proxy sets X-Forwarded-For\n",
        );
      }
      if (tls) {
        process.stderr.write(`tls certificate ${tls.subject}, valid to ${tls.validTo}\n`);
      } else if (!LOOPBACK.test(listen.host)) {
        process.stderr.write(
          'warning: the console speaks plain HTTP: off this machine, give it --tls-cert and --tls-key (or put it behind a TLS reverse proxy) so passwords and the session cookie are not sent in the clear\n',
        );
      }
      // SIGHUP re-reads the certificate and key (a renewal): new connections get them, open ones
      // keep theirs; files that are wrong keep the old ones, and the log says why.
      const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      const reload = () => {
        if (!tls || o.tlsCert === undefined || o.tlsKey === undefined) {
          log('SIGHUP: nothing to reload (plain HTTP)');
          return;
        }
        try {
          const next = loadServeTls(o.tlsCert, o.tlsKey);
          server.setTls(next);
          log(`tls certificate reloaded: ${next.subject}, serial ${next.serialNumber}, valid to ${next.validTo}`);
        } catch (err) {
          if (!(err instanceof Error)) throw err;
          log(`tls reload refused: ${err.message.slice(0, 300)}: the previous certificate is still served`);
        }
      };
      process.on('SIGHUP', reload);
      await waitForShutdown();
      process.off('SIGHUP', reload);
      await server.close();
      await c.close();
      lock.release();
    }),
  );
}
