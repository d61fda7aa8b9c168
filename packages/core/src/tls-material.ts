import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';

/** What is wrong with a certificate, key or CA file; each package raises it under its own code. */
export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const reason = (err: unknown) => ((err as Error).message || 'unreadable').slice(0, 200);

/** Checks a CA file: at least one PEM certificate, each parsing. Returns how many. */
export function checkCertificateAuthorities(pem: string | Buffer, name: string): number {
  const blocks = pem.toString().match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsMaterialError(`${name} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TlsMaterialError(`${name} holds a certificate that does not parse (${reason(err)})`);
    }
  }
  return blocks.length;
}

/**
 * Checks a certificate and its private key: both parse (the key unencrypted) and the key is the
 * certificate's. `names` label them in messages (flags and files). Returns the certificate.
 */
export function checkCertificateAndKey(
  cert: string | Buffer,
  key: string | Buffer,
  names: { cert: string; key: string },
): X509Certificate {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new TlsMaterialError(`${names.cert} is not a PEM certificate (${reason(err)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsMaterialError(
      `${names.key} is not an unencrypted PEM private key (${reason(err)}); decrypt an encrypted one with \`openssl pkey -in KEY -out KEY.plain\``,
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TlsMaterialError(`${names.key} is not the key of ${names.cert} (the key does not match the certificate)`);
  }
  return certificate;
}
