/**
 * A loopback HTTPS server with its own throwaway CA, for tests of code that must trust an
 * extra CA (and must refuse the server without it). Certificates take ~0.3 s to generate.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';

/** A started server: its base URL, the CA that signed it, and `close()`. */
export interface TlsTestServer {
  readonly server: Server;
  readonly port: number;
  /** `https://127.0.0.1:PORT` */
  readonly baseUrl: string;
  /** PEM of the CA that signed the server's certificate. */
  readonly ca: string;
  close(): Promise<void>;
}

/** Starts an HTTPS server on 127.0.0.1 (random port) answering with `handler`. */
export async function startTlsServer(handler: (req: IncomingMessage, res: ServerResponse) => void, commonName = 'test CA'): Promise<TlsTestServer> {
  const authority = await generate([{ name: 'commonName', value: commonName }], {
    keySize: 2048,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    ca: { key: authority.private, cert: authority.cert },
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const server = createServer({ key: leaf.private, cert: leaf.cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    baseUrl: `https://127.0.0.1:${port}`,
    ca: authority.cert,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
