/** Free-port discovery on loopback. */
import net from 'node:net';

/** Asks the OS for a free loopback TCP port. A tiny race remains until the caller binds it. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        if (port === 0) reject(new Error('the OS did not assign a port'));
        else resolve(port);
      });
    });
  });
}
