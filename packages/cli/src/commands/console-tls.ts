import { Option, type Command } from 'commander';
import { installAgentTls } from '@volact/console';
import { printJson } from '../output.js';
import type { Run } from '../runtime.js';

/**
 * `volact console agent-tls`: installs what the console needs to call agents over mutual TLS
 * (agents started with `volact client agent --tls-cert … --client-ca …`).
 */
export function registerConsoleAgentTls(consoleCommand: Command, run: Run): void {
  consoleCommand
    .command('agent-tls')
    .description(
      "install the CA of the agents' TLS certificates and this console's client certificate and key (mutual TLS with `client agent --client-ca`); used for https:// machine addresses",
    )
    .addOption(new Option('--data-dir <dir>', 'data directory of the console').makeOptionMandatory())
    .requiredOption('--ca <file>', "the CA certificate(s) the agents' TLS certificates are signed by (PEM)")
    .requiredOption('--cert <file>', "this console's client certificate (PEM), signed by the agents' --client-ca")
    .requiredOption('--key <file>', 'the private key of --cert (PEM, unencrypted); copied 0600, never shown')
    .option('--json', 'print JSON')
    .action(
      run(async (o: { dataDir: string; ca: string; cert: string; key: string; json?: boolean }) => {
        const s = installAgentTls(o.dataDir, { caFile: o.ca, certFile: o.cert, keyFile: o.key });
        if (o.json) {
          printJson(s);
        } else {
          console.log(`agent TLS installed in ${o.dataDir}: client certificate ${s.subject.replace(/\n/g, ', ')}`);
          console.log(`  issuer ${s.issuer.replace(/\n/g, ', ')}; valid until ${s.validTo}`);
          console.log(`  fingerprint (SHA-256) ${s.fingerprint}: what agents log for this console`);
          console.log(`  ${s.caCertificates} CA certificate(s) trusted for https:// agent addresses`);
        }
        if (s.expired) {
          process.stderr.write(`warning: the client certificate expired on ${s.validTo}: agents will refuse it\n`);
        }
      }),
    );
}
