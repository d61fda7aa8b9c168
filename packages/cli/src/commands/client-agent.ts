import type { Command } from 'commander';
import { Licence } from '@volact/client';
import { CliError } from '../output.js';
import { parseIntOption, parseListen, readSecretFile, readTokenFile } from '../options.js';
import { createLogger, waitForShutdown, type Run } from '../runtime.js';
import { atStart } from './client-machine.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/**
 * MIN_AGENT_TOKEN_LENGTH of '@volact/client/agent', for the help text: that module (fastify) is
 * loaded when the agent starts, not for every `client` command (launch.test.ts checks the two agree).
 */
export const AGENT_TOKEN_MIN_LENGTH = 16;
const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** `client agent`: the management endpoint a console calls (a long-running process of its own). */
export function registerClientAgent(client: Command, run: Run): void {
  client
    .command('agent')
    .description(
      'serve the management endpoint (HTTP JSON, /v1) for a console: status, key, activation, confirmation ID, KMS host; every call needs the bearer token, a client certificate of --client-ca (mTLS), or both',
    )
    .requiredOption('--state-dir <dir>', 'licence store of the installation')
    .requiredOption('--listen <host:port>', 'address to listen on, e.g. 127.0.0.1:7390 (port 0 picks a free one)')
    .option(
      '--admin-token-file <file>',
      `the bearer token a console must send (at least ${AGENT_TOKEN_MIN_LENGTH} characters); optional with --client-ca`,
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM; the address consoles call in its SAN)')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM, unencrypted)')
    .option(
      '--client-ca <file>',
      'mutual TLS: require a client certificate signed by this CA (PEM); then the token is optional',
    )
    .option('--log-level <level>', 'pino log level', 'info')
    .option(
      '--allow-user-operations',
      'record in the state dir that local users without admin rights may install keys and activate through the CLI (recorded, not enforced)',
    )
    .option('--timeout <ms>', 'how long an activation waits for the host or authority', '5000')
    .option(
      '--host-name <name>',
      "the host name consoles show for this machine (default: the system's; several agents on one host each give their own)",
    )
    .option(
      '--authority <url...>',
      "authorities a console may name in an activation (besides the product config's); any other is refused",
    )
    .action(
      run(
        async (o: {
          stateDir: string;
          listen: string;
          authority?: string[];
          adminTokenFile?: string;
          tlsCert?: string;
          tlsKey?: string;
          clientCa?: string;
          logLevel: string;
          allowUserOperations?: boolean;
          timeout: string;
          hostName?: string;
        }) => {
          const { MIN_AGENT_TOKEN_LENGTH, checkAgentTls, checkHostName, createAgentServer, recordAgentSettings } =
            await import('@volact/client/agent');
          const listen = parseListen(o.listen, '--listen');
          if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
            throw new CliError('OPTION_INVALID', '--tls-cert and --tls-key go together (neither: plain HTTP)');
          }
          if (o.clientCa !== undefined && o.tlsCert === undefined) {
            throw new CliError(
              'OPTION_INVALID',
              '--client-ca (mutual TLS) needs --tls-cert and --tls-key: the agent asks for client certificates over HTTPS only',
            );
          }
          if (o.adminTokenFile === undefined && o.clientCa === undefined) {
            throw new CliError(
              'OPTION_INVALID',
              o.tlsCert === undefined
                ? '--admin-token-file is required (or mutual TLS instead: --tls-cert, --tls-key and --client-ca)'
                : '--admin-token-file is required unless --client-ca authenticates consoles by their certificate (mutual TLS)',
            );
          }
          const adminToken =
            o.adminTokenFile === undefined
              ? undefined
              : readTokenFile(o.adminTokenFile, '--admin-token-file', MIN_AGENT_TOKEN_LENGTH);
          const timeoutMs = parseIntOption(o.timeout, '--timeout', 100, 600_000);
          if (o.hostName !== undefined) {
            try {
              checkHostName(o.hostName);
            } catch (err) {
              throw new CliError('OPTION_INVALID', `--host-name: ${(err as Error).message}`);
            }
          }
          if (!LOG_LEVELS.includes(o.logLevel)) {
            throw new CliError(
              'OPTION_INVALID',
              `--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${o.logLevel}"`,
            );
          }
          // Read once, here: a renewed certificate takes a restart.
          const tls =
            o.tlsCert === undefined || o.tlsKey === undefined
              ? undefined
              : {
                  cert: readSecretFile(o.tlsCert, '--tls-cert'),
                  key: readSecretFile(o.tlsKey, '--tls-key'),
                  ...(o.clientCa === undefined ? {} : { clientCa: readSecretFile(o.clientCa, '--client-ca') }),
                };
          const certificate =
            tls &&
            checkAgentTls(tls, {
              cert: `--tls-cert ${o.tlsCert}`,
              key: `--tls-key ${o.tlsKey}`,
              clientCa: `--client-ca ${o.clientCa}`,
            });
          Licence.open({ ...atStart(o), stateDir: o.stateDir }); // no installation, or an unreadable store: refuse to start
          recordAgentSettings(o.stateDir, { userOperations: o.allowUserOperations === true });
          const app = createAgentServer({
            stateDir: o.stateDir,
            machine: atStart(o),
            ...(adminToken === undefined ? {} : { adminToken }),
            ...(tls ? { tls } : {}),
            ...(o.authority ? { authorities: o.authority } : {}),
            logger: await createLogger(o.logLevel),
            timeoutMs,
            ...(o.hostName === undefined ? {} : { facts: { hostName: o.hostName } }),
          });
          await app.listen({ host: listen.host, port: listen.port });
          const addr = app.server.address();
          const port = addr && typeof addr !== 'string' ? addr.port : listen.port;
          const shown = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
          process.stderr.write(`client agent listening on ${tls ? 'https' : 'http'}://${shown}:${port}\n`);
          process.stderr.write(
            `consoles authenticate with ${[
              ...(o.clientCa === undefined ? [] : [`a client certificate signed by --client-ca ${o.clientCa}`]),
              ...(adminToken === undefined ? [] : ['the bearer token of --admin-token-file']),
            ].join(' and ')}\n`,
          );
          if (certificate && Date.parse(certificate.validTo) < Date.now()) {
            process.stderr.write(
              `warning: --tls-cert ${o.tlsCert} expired on ${certificate.validTo}: consoles will refuse the connection\n`,
            );
          }
          if (!tls && !isLoopback(listen.host)) {
            process.stderr.write(
              'warning: the agent speaks plain HTTP: off this machine, serve HTTPS (--tls-cert, --tls-key) so the token is not sent in the clear\n',
            );
          }
          await waitForShutdown();
          await app.close();
        },
      ),
    );
}
