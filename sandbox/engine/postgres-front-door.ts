/**
 * The PostgreSQL front door: one TLS port on loopback through which every emulated flexible
 * server is reached the way Azure exposes it. A client connects with the server's FQDN as the
 * TLS server name (`psql-x.postgres.database.azure.com`, the SNI that any client sends when it
 * connects to that host name), the plain admin login and the server's database, exactly as its
 * `DATABASE_URL` says. The front door terminates TLS (the sandbox CA signs
 * `*.postgres.database.azure.com`), rewrites the startup message's user and database to the
 * role and database that back the server in the embedded cluster, and then only relays bytes:
 * authentication (SCRAM-SHA-256) and everything after it is between the client and PostgreSQL.
 *
 * As on Azure (`require_secure_transport` on), a connection without TLS is refused. Clients
 * that cannot send SNI (libpq to an IP address) may name the server in the user name instead,
 * `login@server`, the login format of Azure's single servers.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const MAX_STARTUP_BYTES = 10_000;
// A client that opens a connection and says nothing must not hold a socket for ever.
const HANDSHAKE_TIMEOUT_MS = 15_000;
const FQDN_PATTERN = /^([a-z0-9][a-z0-9-]{0,61}[a-z0-9])\.postgres\.database\.(?:azure\.com|usgovcloudapi\.net|chinacloudapi\.cn)$/i;

/** Where an accepted connection goes. */
export interface FrontDoorRoute {
  readonly serverName: string;
  readonly port: number;
  /** The role and database in the embedded cluster. */
  readonly user: string;
  readonly database: string;
}

/** A refused connection: a PostgreSQL SQLSTATE and message, sent as a FATAL ErrorResponse. */
export interface FrontDoorRefusal {
  readonly code: string;
  readonly message: string;
}

/** What the client asked for in its startup message and TLS handshake. */
export interface FrontDoorRequest {
  /** From the TLS server name, when it is a flexible server FQDN. */
  readonly serverName: string | undefined;
  readonly user: string | undefined;
  readonly database: string | undefined;
}

/** Resolves a connection request to a backend, or refuses it. */
export type FrontDoorResolver = (request: FrontDoorRequest) => FrontDoorRoute | FrontDoorRefusal;

/** Buffers a stream's data so that exact byte counts can be awaited, then hands the rest over. */
class Inbox {
  private buffered = Buffer.alloc(0);
  private waiter: { bytes: number; resolve: (data: Buffer) => void; reject: (error: Error) => void } | undefined;
  private ended: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.deliver();
  };
  private readonly onEnd = (): void => {
    this.ended = new Error('the client closed the connection during the handshake');
    this.deliver();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onEnd);
  }

  private deliver(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    if (this.buffered.length >= waiter.bytes) {
      this.waiter = undefined;
      const data = this.buffered.subarray(0, waiter.bytes);
      this.buffered = this.buffered.subarray(waiter.bytes);
      waiter.resolve(data);
    } else if (this.ended !== undefined) {
      this.waiter = undefined;
      waiter.reject(this.ended);
    }
  }

  take(bytes: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.waiter = { bytes, resolve, reject };
      this.deliver();
    });
  }

  /** Stops buffering and returns what arrived beyond the bytes taken. */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('error', this.onEnd);
    this.stream.pause();
    const rest = this.buffered;
    this.buffered = Buffer.alloc(0);
    return rest;
  }
}

/** A duplex over a socket that first replays bytes already read from it (for the TLS handshake). */
function replaying(socket: net.Socket, already: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  if (already.length > 0) duplex.push(already);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (error) => duplex.destroy(error));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

/** A FATAL ErrorResponse message. */
export function errorResponse(refusal: FrontDoorRefusal): Buffer {
  const fields = Buffer.concat([
    ...[
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', refusal.code],
      ['M', refusal.message],
    ].map(([type, value]) => Buffer.from(`${type ?? ''}${value ?? ''}\0`, 'utf8')),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write('E', 0, 'ascii');
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

/** An ErrorResponse with every mention of `role` in its text fields replaced by `login`. */
function renameInError(body: Buffer, role: string, login: string): Buffer {
  const fields = body
    .toString('utf8')
    .split('\0')
    .filter((field) => field !== '')
    .map((field) => `${field.slice(0, 1)}${field.slice(1).replaceAll(role, login)}\0`);
  const payload = Buffer.from(`${fields.join('')}\0`, 'utf8');
  const header = Buffer.alloc(5);
  header.write('E', 0, 'ascii');
  header.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

/** The parameters of a StartupMessage body (after length and protocol version). */
function parseParameters(body: Buffer): [string, string][] {
  const parts = body.toString('utf8').split('\0');
  const pairs: [string, string][] = [];
  for (let index = 0; index + 1 < parts.length; index += 2) {
    const key = parts[index] ?? '';
    if (key === '') break;
    pairs.push([key, parts[index + 1] ?? '']);
  }
  return pairs;
}

function startupMessage(protocol: number, parameters: readonly [string, string][]): Buffer {
  const body = Buffer.concat([...parameters.map(([key, value]) => Buffer.from(`${key}\0${value}\0`, 'utf8')), Buffer.from([0])]);
  const header = Buffer.alloc(8);
  header.writeInt32BE(body.length + 8, 0);
  header.writeInt32BE(protocol, 4);
  return Buffer.concat([header, body]);
}

/** The TLS front door of the embedded PostgreSQL. */
export class PostgresFrontDoor {
  private readonly server: net.Server;
  private readonly connections = new Map<net.Socket, string | undefined>();
  private listeningPort = 0;

  constructor(
    private readonly options: {
      readonly cert: string;
      readonly key: string;
      readonly resolve: FrontDoorResolver;
      /** Every cluster port a CancelRequest may be meant for. */
      readonly cancelTargets: () => readonly number[];
      readonly log: (line: string) => void;
    },
  ) {
    this.server = net.createServer((socket) => {
      this.connections.set(socket, undefined);
      socket.once('close', () => this.connections.delete(socket));
      socket.on('error', () => undefined);
      this.accept(socket).catch((error: unknown) => {
        options.log(`postgres front door: connection failed: ${error instanceof Error ? error.message : String(error)}`);
        socket.destroy();
      });
    });
  }

  /** `127.0.0.1`. */
  readonly host = '127.0.0.1';

  /** The port, once listening. */
  get port(): number {
    return this.listeningPort;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    this.listeningPort = typeof address === 'object' && address !== null ? address.port : 0;
  }

  /** Closes the port and every relayed connection. */
  async close(): Promise<void> {
    for (const socket of this.connections.keys()) socket.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  /** Ends every relayed connection of one server (deleted, stopped), as Azure does. */
  disconnect(serverName: string): void {
    for (const [socket, server] of this.connections) if (server === serverName) socket.destroy();
  }

  private async accept(socket: net.Socket): Promise<void> {
    socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
    const inbox = new Inbox(socket);
    const first = await inbox.take(1);
    let client: Duplex = socket;
    let clientInbox = inbox;
    let servername: string | false = false;
    if (first[0] === 0x16) {
      // Direct TLS (PostgreSQL 17+ sslnegotiation=direct): the ClientHello comes first.
      const secured = await this.startTls(socket, Buffer.concat([first, inbox.detach()]));
      client = secured.socket;
      servername = secured.servername;
      clientInbox = new Inbox(client);
    } else {
      let header: Buffer = Buffer.concat([first, await inbox.take(7)]);
      for (;;) {
        const length = header.readInt32BE(0);
        const code = header.readInt32BE(4);
        if (code === SSL_REQUEST && length === 8) {
          socket.write('S');
          const secured = await this.startTls(socket, inbox.detach());
          client = secured.socket;
          servername = secured.servername;
          clientInbox = new Inbox(client);
          break;
        }
        if (code === GSSENC_REQUEST && length === 8) {
          socket.write('N');
          header = await inbox.take(8);
          continue;
        }
        if (code === CANCEL_REQUEST && length >= 16) {
          const message = Buffer.concat([header, await inbox.take(length - 8)]);
          socket.end();
          this.forwardCancel(message);
          return;
        }
        // A plain startup message: Azure refuses connections without TLS.
        const body = length > 8 && length <= MAX_STARTUP_BYTES ? await inbox.take(length - 8) : Buffer.alloc(0);
        const parameters = new Map(parseParameters(body));
        socket.end(
          errorResponse({
            code: '28000',
            message: `no pg_hba.conf entry for host "127.0.0.1", user "${parameters.get('user') ?? ''}", database "${parameters.get('database') ?? parameters.get('user') ?? ''}", no encryption`,
          }),
        );
        return;
      }
    }
    const header = await clientInbox.take(8);
    const length = header.readInt32BE(0);
    const protocol = header.readInt32BE(4);
    if (length < 8 || length > MAX_STARTUP_BYTES || protocol >> 16 !== 3) {
      client.end(errorResponse({ code: '08P01', message: `expected a protocol 3 startup message, found protocol ${String(protocol >> 16)}.${String(protocol & 0xffff)} (${String(length)} bytes)` }));
      return;
    }
    const parameters = parseParameters(await clientInbox.take(length - 8));
    const get = (key: string): string | undefined => parameters.find(([name]) => name === key)?.[1];
    const fqdn = typeof servername === 'string' ? FQDN_PATTERN.exec(servername) : null;
    const resolved = this.options.resolve({ serverName: fqdn?.[1]?.toLowerCase(), user: get('user'), database: get('database') });
    if (!('port' in resolved)) {
      client.end(errorResponse(resolved));
      return;
    }
    const rewritten = parameters.filter(([key]) => key !== 'user' && key !== 'database');
    const backend = net.connect(resolved.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      backend.once('connect', resolve);
      backend.once('error', reject);
    }).catch((error: unknown) => {
      client.end(errorResponse({ code: '57P03', message: `the server ${resolved.serverName} is not accepting connections: ${error instanceof Error ? error.message : String(error)}` }));
      throw error;
    });
    socket.setTimeout(0);
    this.connections.set(socket, resolved.serverName);
    const close = (): void => {
      backend.destroy();
      client.destroy();
      socket.destroy();
    };
    backend.on('error', close);
    backend.on('close', close);
    client.on('error', close);
    client.on('close', close);
    const backendInbox = new Inbox(backend);
    backend.write(startupMessage(protocol, [['user', resolved.user], ['database', resolved.database], ...rewritten]));
    const rest = clientInbox.detach();
    if (rest.length > 0) backend.write(rest);
    client.pipe(backend);
    client.resume();
    // Until authentication succeeds, relay the server's messages one by one, so that an error
    // names the login the client used ("lmsadmin"), not the role behind it ("lmsadmin@psql-x").
    const login = get('user') ?? '';
    for (;;) {
      const header = await backendInbox.take(5);
      const length = header.readInt32BE(1);
      const body = await backendInbox.take(Math.max(0, length - 4));
      const type = String.fromCharCode(header[0] ?? 0);
      if (type === 'E') {
        // An error before authentication completes is fatal: PostgreSQL closes the connection.
        client.end(login === resolved.user ? Buffer.concat([header, body]) : renameInError(body, resolved.user, login));
        return;
      }
      client.write(Buffer.concat([header, body]));
      if (type === 'R' && body.length >= 4 && body.readInt32BE(0) === 0) break;
    }
    const pending = backendInbox.detach();
    if (pending.length > 0) client.write(pending);
    backend.pipe(client);
    backend.resume();
  }

  private startTls(socket: net.Socket, already: Buffer): Promise<{ socket: tls.TLSSocket; servername: string | false }> {
    const secure = new tls.TLSSocket(replaying(socket, already), {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: this.options.cert, key: this.options.key, minVersion: 'TLSv1.2' }),
      ALPNProtocols: ['postgresql'],
    });
    return new Promise((resolve, reject) => {
      secure.once('secure', () => {
        resolve({ socket: secure, servername: secure.servername ?? false });
      });
      secure.once('error', reject);
    });
  }

  private forwardCancel(message: Buffer): void {
    // The cancel key names a backend process of one cluster; only that cluster acts on it.
    for (const port of this.options.cancelTargets()) {
      const target = net.connect(port, '127.0.0.1', () => {
        target.end(message);
      });
      target.on('error', () => undefined);
    }
  }
}
