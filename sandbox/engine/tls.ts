/**
 * TLS material for the sandbox: a throw-away certificate authority and a leaf certificate for
 * the loopback names, signed by it. Clients trust the CA explicitly; verification stays on.
 */
import { generate } from 'selfsigned';

/** PEM-encoded certificates and keys generated for one sandbox run. */
export interface SandboxTlsMaterial {
  readonly caCert: string;
  readonly leafCert: string;
  readonly leafKey: string;
}

/**
 * Generates a CA and a leaf certificate for 127.0.0.1, ::1, localhost and
 * `*.postgres.database.azure.com` (the PostgreSQL front door is reached by each server's FQDN
 * as the TLS server name, which clients verify). Only clients given this CA trust it.
 */
export async function generateTlsMaterial(): Promise<SandboxTlsMaterial> {
  const notBeforeDate = new Date(Date.now() - 60 * 60 * 1000);
  const notAfterDate = new Date(Date.now() + 30 * 24 * 60 * 60 * 1000);
  const ca = await generate([{ name: 'commonName', value: 'Ops Autopilot Sandbox CA' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 2, value: '*.postgres.database.azure.com' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  return { caCert: ca.cert, leafCert: leaf.cert, leafKey: leaf.private };
}
