/**
 * The local Azure sandbox: an HTTPS server on loopback that real Azure SDK clients talk to,
 * with embedded PostgreSQL and Azurite beside it. See `sandbox/contract.ts` for how resource
 * providers plug in.
 *
 * ```ts
 * const sandbox = await startSandbox({ lroDurationMs: 100 });
 * // point clients at sandbox.baseUrl, trusting sandbox.caPem
 * await sandbox.stop();
 * ```
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxProvider } from './contract.ts';
import { AzuriteProcess } from './engine/azurite.ts';
import { SandboxStartError } from './engine/errors.ts';
import { RUN_RECORDS_ACCOUNT, sandboxAzureSettings, writeWorldConfig } from './engine/estate-config.ts';
import { EmbeddedPostgresBackend } from './engine/postgres.ts';
import { SandboxServer } from './engine/server.ts';
import { DEFAULT_THROTTLING, type ThrottlingSettings } from './engine/throttle.ts';
import { generateTlsMaterial } from './engine/tls.ts';
import type { MintTokenOptions } from './engine/identity.ts';
import type { CapturedWebhook, CloudEventOutboxEvent, EventGridOutboxEvent, FaultSpec, RequestLogEntry } from './engine/types.ts';
import { assignResources, listWorldFiles, loadWorldFile, resolveWorldArgument, type LoadedWorld } from './engine/worlds.ts';
import { estateWorld, type EstateWorld } from './engine/estate-world.ts';

export type { CapturedWebhook, CloudEventOutboxEvent, EventGridOutboxEvent, FaultSpec, OperationSnapshot, RequestLogEntry, SandboxEvent } from './engine/types.ts';
export { ACTION_GROUPS_APP_ID, type MintTokenOptions } from './engine/identity.ts';
export { WorldValidationError, GeneratedConfigError, ChildProcessError, PostgresBackendError, SandboxStartError, UnknownWorldError } from './engine/errors.ts';

/** The tenant of every shipped world; used when no world is loaded. */
export const DEFAULT_TENANT_ID = '72f988bf-0000-4000-8000-00000000a001';

/** The repository root (this file lives in `sandbox/`). */
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The seed worlds loaded by default and named by `--world <name>`. */
export const SEED_WORLDS_DIR = path.join(REPO_ROOT, 'sandbox', 'worlds');

/** Options of {@link startSandbox}. */
export interface SandboxOptions {
  /**
   * Worlds: seed world names (`lms`) or world files (a path, or a name ending in `.yaml`), see
   * {@link resolveWorldArgument}; default: every file in `sandbox/worlds/`.
   */
  worlds?: string[];
  /**
   * Estate config files to serve as they are, without a world (`sandbox --estate`): their
   * targets that no loaded world has are generated with healthy defaults, and each gets a
   * generated config pointing at the sandbox (see `engine/estate-world.ts`).
   */
  estates?: string[];
  /** 0 = random free port (default 0). */
  port?: number;
  /** How long long-running operations stay InProgress, in sandbox-clock time (default 1500 ms). */
  lroDurationMs?: number;
  /**
   * Durations of particular operation ids, e.g. `{ 'Microsoft.DBforPostgreSQL/flexibleServers.create': 7_200_000 }`
   * for a restore that takes two hours of sandbox time (advance the clock to finish it).
   */
  lroDurationsMs?: Record<string, number>;
  /**
   * `Retry-After` seconds on long-running operation responses (default 1). SDK pollers wait
   * this long between polls; 0 makes them fall back to their own interval (`updateIntervalInMs`).
   */
  lroRetryAfterSeconds?: number;
  /** Added latency per request (default 0; the benchmark uses 50). */
  latencyMs?: number;
  /** Start embedded PostgreSQL (default true). Costs about 1-2 s of start-up and ~40 MB. */
  postgres?: boolean;
  /** Start Azurite (default true). Costs about 1-1.5 s of start-up and ~100 MB. */
  azurite?: boolean;
  /** Default: a fresh temp dir, removed on stop. A given directory is kept. */
  dataDir?: string;
  /** Token-bucket parameters; defaults: ARM's 25/250 reads and 10/200 writes, ACR 10/200, Key Vault 400/4,000 per vault. */
  throttling?: Partial<ThrottlingSettings>;
  /** Default: `defaultProviders()` from `sandbox/providers/index.ts`. */
  providers?: SandboxProvider[];
  /** Receives diagnostic lines (default: discarded). */
  log?: (line: string) => void;
}

/** A running sandbox. */
export interface SandboxHandle {
  /** `https://127.0.0.1:PORT` */
  readonly baseUrl: string;
  readonly tenantId: string;
  /** `${baseUrl}/${tenantId}/oauth2/v2.0/token` */
  readonly tokenEndpoint: string;
  /** The CA certificate (PEM) to trust. */
  readonly caPem: string;
  /** Path of the CA PEM on disk. */
  readonly caFile: string;
  readonly azurite?: { blobEndpoint: string; tableEndpoint: string; blobUrlTemplate: string };
  /**
   * `port` is the main cluster (superuser, tests); `frontDoorPort` the TLS port every flexible
   * server is reached at by its FQDN (`azure.postgresUrlTemplate` of the generated configs).
   */
  readonly postgres?: { host: string; port: number; frontDoorPort: number };
  /** `configFile` = generated estate config (YAML) pointing at this sandbox. */
  readonly worlds: readonly { name: string; file: string; configFile: string }[];
  /**
   * The estate files given in {@link SandboxOptions.estates}: `configFile` is the copy pointing at
   * this sandbox, `generated` the target ids served with defaults (not by a loaded world).
   */
  readonly estates: readonly { name: string; file: string; configFile: string; generated: readonly string[] }[];
  /** Settings to merge into an estate config's `azure:` block to point it at this sandbox. */
  azureSettings(): Record<string, unknown>;
  /** The request log (control endpoints excluded). */
  requests(): Promise<RequestLogEntry[]>;
  clearRequests(): Promise<void>;
  injectFault(fault: FaultSpec): Promise<void>;
  clearFaults(): Promise<void>;
  /** Captured webhook bodies, all or for one webhook name. */
  webhooks(name?: string): Promise<CapturedWebhook[]>;
  /** Shifts the sandbox clock (`context.now()`); resolves once the operations it made due have completed. */
  advanceClock(ms: number): Promise<void>;
  /** The sandbox clock's current time (`GET /_sandbox/clock`). */
  now(): Promise<Date>;
  /** The Event Grid outbox: what the emulated services published (`GET /_sandbox/eventgrid`). */
  eventGridEvents(): Promise<EventGridOutboxEvent[]>;
  /** The same events as CloudEvents 1.0. */
  cloudEvents(): Promise<CloudEventOutboxEvent[]>;
  clearEventGridEvents(): Promise<void>;
  /**
   * Pushes every event published from now on (of `eventTypes`, all when absent) to a loopback
   * http endpoint, e.g. the local host's Event Grid webhook; a subscription of the same name is
   * replaced. Advancing the clock waits for the deliveries it causes.
   */
  subscribeEventGrid(subscription: { name?: string; endpoint: string; eventTypes?: readonly string[]; schema?: 'eventgrid' | 'cloudevents' }): Promise<void>;
  /** The deliveries made to the subscriptions: event id and type, status or error. */
  eventGridDeliveries(): Promise<{ subscription: string; eventId: string; eventType: string; subject: string; status?: number; error?: string }[]>;
  /** Mints an access token with chosen claims (`POST /_sandbox/identity/tokens`), e.g. a Secure Webhook token. */
  mintToken(options: MintTokenOptions): Promise<string>;
  /** Makes the identity sign with a new key (the JWKS keeps the previous ones); returns its `kid`. */
  rotateSigningKey(): Promise<string>;
  /** Sets (or with `undefined` resets) the duration of one long-running operation id, in sandbox-clock milliseconds. */
  setOperationDuration(operationId: string, ms: number | undefined): Promise<void>;
  /** Stops the server and the child processes; removes the temp data dir. Idempotent. */
  stop(): Promise<void>;
}

async function loadDefaultProviders(log: (line: string) => void): Promise<SandboxProvider[]> {
  // Imported lazily so that the engine works (with explicit providers) even without them.
  const specifier = './providers/index.ts';
  let module: unknown;
  try {
    module = await import(specifier);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes('providers/index')) {
      log('sandbox: sandbox/providers/index.ts not found; running without providers');
      return [];
    }
    throw error;
  }
  const factory = (module as { defaultProviders?: unknown }).defaultProviders;
  if (typeof factory !== 'function') {
    throw new SandboxStartError('sandbox/providers/index.ts: expected an exported function defaultProviders(), found none');
  }
  const providers: unknown = (factory as () => unknown)();
  if (!Array.isArray(providers)) throw new SandboxStartError('defaultProviders(): expected an array of providers');
  return providers as SandboxProvider[];
}

/** Calls a control endpoint over HTTPS, trusting the sandbox CA (e.g. `POST /_sandbox/health` from the demo). */
export async function controlRequest(request: { baseUrl: string; caPem: string; method: string; path: string; body?: unknown }): Promise<unknown> {
  const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const outgoing = https.request(
      new URL(request.path, request.baseUrl),
      {
        method: request.method,
        ca: request.caPem,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
  if (status >= 400) {
    throw new SandboxControlError(request.method, request.path, status, text);
  }
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}

/** A control endpoint answered with an error. */
export class SandboxControlError extends Error {
  override readonly name = 'SandboxControlError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly responseBody: string,
  ) {
    super(`${method} ${path}: expected a 2xx response, found ${String(status)}: ${responseBody.slice(0, 500)}`);
  }
}

function topLevelId(resourceId: string): string {
  return resourceId.split('/').slice(0, 9).join('/').toLowerCase();
}

/** Starts a sandbox; see {@link SandboxOptions}. Everything started is stopped again on failure. */
export async function startSandbox(options: SandboxOptions = {}): Promise<SandboxHandle> {
  const log = options.log ?? ((): void => undefined);
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ops-autopilot-sandbox-')));
  await mkdir(dataDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  // Child processes still starting when start-up fails must be stopped too, so cleanup waits for them.
  const starting: Promise<unknown>[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled(starting);
    const errors: unknown[] = [];
    for (const step of cleanups.reverse()) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    cleanups.length = 0;
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, `the sandbox did not stop cleanly: ${errors.map((error) => (error as Error).message).join('; ')}`);
  };

  try {
    // PostgreSQL needs nothing else, so it starts first and overlaps with everything below.
    const postgresStarting = options.postgres === false ? undefined : EmbeddedPostgresBackend.start(dataDir, log);
    if (postgresStarting !== undefined) {
      // It may fail before anything below awaits it; the failure is handled where it is awaited
      // (an unhandled rejection meanwhile would crash the process with a raw stack trace).
      postgresStarting.catch(() => undefined);
      starting.push(
        postgresStarting.then(
          (backend) => {
            cleanups.push(() => backend.stop());
          },
          () => undefined,
        ),
      );
    }
    const [tls, providers, loaded] = await Promise.all([
      generateTlsMaterial(),
      options.providers ?? loadDefaultProviders(log),
      (async (): Promise<LoadedWorld[]> => {
        const files =
          options.worlds === undefined
            ? await listWorldFiles(SEED_WORLDS_DIR)
            : await Promise.all(options.worlds.map((value) => resolveWorldArgument(value, SEED_WORLDS_DIR)));
        return Promise.all(files.map((file) => loadWorldFile(file)));
      })(),
    ]);
    const estateWorlds: EstateWorld[] = [];
    for (const file of options.estates ?? []) estateWorlds.push(await estateWorld(file, [...loaded, ...estateWorlds]));
    loaded.push(...estateWorlds);
    const assignment = assignResources(loaded, providers);
    const caFile = path.join(dataDir, 'sandbox-ca.pem');
    const chain = `${tls.leafCert.trim()}\n${tls.caCert.trim()}\n`;
    const certFile = path.join(dataDir, 'sandbox-leaf.pem');
    const keyFile = path.join(dataDir, 'sandbox-leaf-key.pem');
    await Promise.all([
      writeFile(caFile, tls.caCert),
      writeFile(certFile, chain),
      writeFile(keyFile, tls.leafKey, { mode: 0o600 }),
    ]);

    const tenantIds = [...new Set(loaded.map((entry) => entry.world.tenantId))];
    if (tenantIds.length === 0) tenantIds.push(DEFAULT_TENANT_ID);
    const tenantId = tenantIds[0] ?? DEFAULT_TENANT_ID;
    const locations = new Map<string, string>();
    for (const { world } of loaded) {
      for (const resource of world.resources) {
        locations.set(topLevelId(`/subscriptions/${world.subscriptionId}/resourceGroups/${resource.resourceGroup}/providers/${resource.type}/${resource.name}`), resource.location);
      }
    }
    const worldsOut: { name: string; file: string; configFile: string }[] = [];
    const estatesOut: { name: string; file: string; configFile: string; generated: readonly string[] }[] = [];
    const server = new SandboxServer({
      tenantIds,
      tls: { cert: chain, key: tls.leafKey },
      providers,
      lroDurationMs: options.lroDurationMs ?? 1500,
      ...(options.lroDurationsMs === undefined ? {} : { lroDurationsMs: options.lroDurationsMs }),
      lroRetryAfterSeconds: options.lroRetryAfterSeconds ?? 1,
      latencyMs: options.latencyMs ?? 0,
      throttling: { ...DEFAULT_THROTTLING, ...options.throttling },
      log,
      locationOf: (resourceId) => locations.get(topLevelId(resourceId)),
      describeWorlds: () =>
        loaded.map(({ world, file }) => ({
          name: world.name,
          file,
          configFile: [...worldsOut, ...estatesOut].find((entry) => entry.name === world.name)?.configFile,
          tenantId: world.tenantId,
          subscriptionId: world.subscriptionId,
          resources: world.resources.length,
          plantedProblems: world.plantedProblems,
        })),
    });

    const storageAccounts = loaded.flatMap(({ world }) =>
      world.resources.filter((resource) => resource.type.toLowerCase() === 'microsoft.storage/storageaccounts').map((resource) => resource.name),
    );
    const azuriteStarting =
      options.azurite === false
        ? undefined
        : AzuriteProcess.start({ dataDir, certFile, keyFile, caPem: tls.caCert, accounts: ['devstoreaccount1', RUN_RECORDS_ACCOUNT, ...storageAccounts], log }).then((started) => {
            cleanups.push(() => started.stop());
            return started;
          });
    if (azuriteStarting !== undefined) starting.push(azuriteStarting);
    const [, azurite, postgres] = await Promise.all([
      server.listen(options.port ?? 0).then(() => {
        cleanups.push(() => server.close());
      }),
      azuriteStarting,
      postgresStarting,
    ]);
    // The front door presents the same leaf certificate, which also names *.postgres.database.azure.com.
    await postgres?.openFrontDoor({ cert: chain, key: tls.leafKey });
    server.postgres = postgres;
    server.azurite = azurite?.endpoints;
    if (postgres !== undefined) server.watchService('postgres', postgres);
    if (azurite !== undefined) server.watchService('azurite', azurite);
    const baseUrl = server.baseUrl;
    const tokenEndpoint = `${baseUrl}/${tenantId}/oauth2/v2.0/token`;

    const seedContext = server.seedContext();
    for (const [entry, byProvider] of assignment) {
      for (const [provider, resources] of byProvider) {
        await provider.seed(entry.world, resources, seedContext);
      }
    }
    // A point-in-time restore to any earlier point gets the seeded data: what "before" looks like.
    postgres?.markSeeded();
    for (const provider of providers) await provider.afterSeed?.(seedContext);

    const azure = sandboxAzureSettings({
      baseUrl,
      tokenEndpoint,
      caFile,
      blobUrlTemplate: azurite?.endpoints.blobUrlTemplate,
      tableUrlTemplate: azurite === undefined ? undefined : `${azurite.endpoints.tableEndpoint}/{name}`,
      postgresFrontDoor: postgres?.frontDoor,
    });
    const configDir = path.join(dataDir, 'worlds');
    await mkdir(configDir, { recursive: true });
    for (const { world, file } of loaded) {
      const { configFile } = await writeWorldConfig({
        world,
        repoRoot: REPO_ROOT,
        outputDir: configDir,
        baseUrl,
        azure,
        runRecordsBlobServiceUrl: azurite === undefined ? undefined : `${azurite.endpoints.blobEndpoint}/${RUN_RECORDS_ACCOUNT}`,
        stateTableServiceUrl: azurite === undefined ? undefined : `${azurite.endpoints.tableEndpoint}/${RUN_RECORDS_ACCOUNT}`,
        log,
      });
      const fromEstate = estateWorlds.find((entry) => entry.world === world);
      if (fromEstate === undefined) worldsOut.push({ name: world.name, file, configFile });
      else estatesOut.push({ name: world.name, file: fromEstate.estateFile, configFile, generated: fromEstate.generated });
    }
    log(`sandbox: ready at ${baseUrl} (${String(loaded.length)} worlds, ${String(providers.length)} providers)`);
    return createHandle({ baseUrl, tenantId, tokenEndpoint, caPem: tls.caCert, caFile, azurite, postgres, worlds: worldsOut, estates: estatesOut, azure, cleanup });
  } catch (error) {
    try {
      await cleanup();
    } catch (cleanupError) {
      log(`sandbox: cleanup after a failed start also failed: ${(cleanupError as Error).message}`);
    }
    throw error;
  }
}

function createHandle(parts: {
  baseUrl: string;
  tenantId: string;
  tokenEndpoint: string;
  caPem: string;
  caFile: string;
  azurite: AzuriteProcess | undefined;
  postgres: EmbeddedPostgresBackend | undefined;
  worlds: { name: string; file: string; configFile: string }[];
  estates: { name: string; file: string; configFile: string; generated: readonly string[] }[];
  azure: Record<string, unknown>;
  cleanup: () => Promise<void>;
}): SandboxHandle {
  let stopping: Promise<void> | undefined;
  const control = (method: string, controlPath: string, body?: unknown): Promise<unknown> =>
    controlRequest({ baseUrl: parts.baseUrl, caPem: parts.caPem, method, path: controlPath, body });
  return {
    baseUrl: parts.baseUrl,
    tenantId: parts.tenantId,
    tokenEndpoint: parts.tokenEndpoint,
    caPem: parts.caPem,
    caFile: parts.caFile,
    ...(parts.azurite === undefined
      ? {}
      : {
          azurite: {
            blobEndpoint: parts.azurite.endpoints.blobEndpoint,
            tableEndpoint: parts.azurite.endpoints.tableEndpoint,
            blobUrlTemplate: parts.azurite.endpoints.blobUrlTemplate,
          },
        }),
    ...(parts.postgres === undefined
      ? {}
      : { postgres: { host: parts.postgres.host, port: parts.postgres.port, frontDoorPort: parts.postgres.frontDoor?.port ?? 0 } }),
    worlds: parts.worlds,
    estates: parts.estates,
    azureSettings: () => ({ ...parts.azure }),
    requests: async () => (await control('GET', '/_sandbox/requests')) as RequestLogEntry[],
    clearRequests: async () => {
      await control('DELETE', '/_sandbox/requests');
    },
    injectFault: async (fault) => {
      await control('POST', '/_sandbox/faults', fault);
    },
    clearFaults: async () => {
      await control('DELETE', '/_sandbox/faults');
    },
    webhooks: async (name) =>
      (await control('GET', name === undefined ? '/_sandbox/webhooks' : `/_sandbox/webhooks/${encodeURIComponent(name)}`)) as CapturedWebhook[],
    advanceClock: async (ms) => {
      await control('POST', '/_sandbox/clock', { advanceMs: ms });
    },
    now: async () => new Date(((await control('GET', '/_sandbox/clock')) as { now: string }).now),
    eventGridEvents: async () => (await control('GET', '/_sandbox/eventgrid')) as EventGridOutboxEvent[],
    cloudEvents: async () => (await control('GET', '/_sandbox/eventgrid?schema=cloudevents')) as CloudEventOutboxEvent[],
    clearEventGridEvents: async () => {
      await control('DELETE', '/_sandbox/eventgrid');
    },
    subscribeEventGrid: async (subscription) => {
      await control('POST', '/_sandbox/eventgrid/subscriptions', subscription);
    },
    eventGridDeliveries: async () =>
      ((await control('GET', '/_sandbox/eventgrid/subscriptions')) as { deliveries: { subscription: string; eventId: string; eventType: string; subject: string; status?: number; error?: string }[] }).deliveries,
    mintToken: async (options) => ((await control('POST', '/_sandbox/identity/tokens', options)) as { access_token: string }).access_token,
    rotateSigningKey: async () => ((await control('POST', '/_sandbox/identity/keys/rotate')) as { kid: string }).kid,
    setOperationDuration: async (operationId, ms) => {
      await control('POST', '/_sandbox/operations/durations', { [operationId]: ms ?? null });
    },
    stop: () => (stopping ??= parts.cleanup()),
  };
}
