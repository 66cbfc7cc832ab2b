/**
 * The contract between the sandbox engine (`sandbox/engine/*`) and the resource providers
 * (`sandbox/providers/*`). The engine owns transport, TLS, identity, throttling, long-running
 * operations, faults, the request log and the child processes; a provider owns the state and
 * REST shapes of one Azure resource type or data plane.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Which host a route is served on. */
export type RouteHost =
  /** Azure Resource Manager: `https://127.0.0.1:{port}/subscriptions/...` */
  | 'arm'
  /** Key Vault data plane: `https://127.0.0.1:{port}/vaults/{vaultName}/secrets/...` */
  | 'keyvault'
  /** ACR data plane: `https://127.0.0.1:{port}/registries/{registryName}/acr/v1/...`, `/v2/...`, `/oauth2/...` */
  | 'acr'
  /** Emulated apps' own endpoints: `https://127.0.0.1:{port}/_hosts/{hostname}/{path}` */
  | 'apphost';

/**
 * ARM throttling class of a request. Reads and writes/deletes draw on separate token buckets,
 * as in ARM; `none` is not throttled (e.g. app health endpoints).
 */
export type ThrottleClass = 'read' | 'write' | 'none';

/** A parsed request handed to a route handler. */
export interface SandboxRequest {
  readonly method: string;
  /** The path after the host prefix (e.g. after `/vaults/{vaultName}`), with no query string. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON body, or undefined. Form bodies (OAuth) are in `form`. */
  readonly body: unknown;
  readonly form: URLSearchParams | undefined;
  readonly rawBody: Buffer;
  /** Named route parameters from the pattern, e.g. `{ subscriptionId, resourceGroup, name }`. */
  readonly params: Readonly<Record<string, string>>;
  /** For host-prefixed routes, the prefix value: vault name, registry name or app hostname. */
  readonly hostName: string | undefined;
  /** Claims of the bearer token, when one was presented and verified by the engine. */
  readonly principal: { readonly oid: string; readonly aud: string; readonly scp?: string } | undefined;
}

/** What a handler returns; the engine serialises it. */
export interface SandboxResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** JSON-serialised unless `rawBody` is set. */
  readonly body?: unknown;
  readonly rawBody?: Buffer | string;
}

/** A route a provider registers. Patterns use `{name}` segments, matched case-insensitively for ARM. */
export interface RouteDefinition {
  readonly host: RouteHost;
  readonly method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE' | 'HEAD';
  /** e.g. `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.Web/sites/{name}` */
  readonly pattern: string;
  readonly throttle: ThrottleClass;
  /** Name used by fault injection and the request log, e.g. `Microsoft.Web/sites.restart`. */
  readonly operationId: string;
  /** When false the engine does not demand a bearer token (OAuth endpoints, app health). Default true. */
  readonly requiresAuth?: boolean;
  readonly handler: (request: SandboxRequest, context: ProviderContext) => SandboxResponse | Promise<SandboxResponse>;
}

/** Handle on a long-running operation started by a provider. */
export interface LongRunningOperation {
  readonly id: string;
  /** Builds the 202/201 response with `Azure-AsyncOperation` and `Location` headers. */
  accepted(options?: { status?: 201 | 202; body?: unknown }): SandboxResponse;
}

/** Engine services available to providers. */
export interface ProviderContext {
  /** The sandbox's clock. Tests may shift it; providers must not call `Date.now()` directly. */
  now(): Date;
  /**
   * The latest real (wall-clock) instant at which the sandbox clock read at most `sandboxTime`,
   * for backends that stamp with real time (the embedded PostgreSQL's commit timestamps).
   */
  realTimeAt(sandboxTime: Date): Date;
  /** Base URL of the sandbox, e.g. `https://127.0.0.1:8443`. */
  readonly baseUrl: string;
  /**
   * Starts a long-running operation. `run` performs the mutation when the operation completes
   * (after the configured duration); if it throws, or a fault is injected, the operation ends
   * `Failed` and the mutation is not applied. `resourceId` is used in errors and the log.
   */
  startOperation(options: {
    operationId: string;
    resourceId: string;
    /** Called when the operation starts, e.g. to set `provisioningState` to `Updating`. */
    onStart?: () => void;
    run: () => void | Promise<void>;
    /**
     * Called when the operation ends `Failed` (an injected fault or `run` threw), so the
     * resource leaves the transitional state `onStart` put it in (e.g. `provisioningState:
     * Failed`). Additive.
     */
    onFailed?: () => void;
    /**
     * Optional final body served at the `Location` URL once the operation succeeded (200);
     * `null` answers 200 with no body; without it the answer is 204.
     */
    result?: () => unknown;
  }): LongRunningOperation;
  /** Builds an ARM error response: `{ error: { code, message } }`. */
  armError(status: number, code: string, message: string): SandboxResponse;
  /** The embedded PostgreSQL, for providers that back servers with real databases. */
  readonly postgres: PostgresBackend | undefined;
  /**
   * Azurite, when running: its endpoints and the generated shared key of each account (every
   * `Microsoft.Storage/storageAccounts` resource of the worlds has one), e.g. for `listKeys`.
   * Added by the engine (additive).
   */
  readonly azurite?: SandboxStorageEndpoints | undefined;
  /** Records an event in the sandbox state log (visible at `GET /_sandbox/state`). */
  event(kind: string, details: Record<string, unknown>): void;
  /**
   * Verifies an Entra ID access token minted by the sandbox identity endpoint (signature, issuer
   * and expiry) and returns its claims, or undefined when it is not valid. Expiry is checked
   * against real time, not the sandbox clock: clients and Azurite cache and check tokens by real
   * time, and the sandbox clock may be shifted by days.
   * Data planes with their own authentication flow register routes with `requiresAuth: false`
   * and call this themselves: the Key Vault challenge (401 + `WWW-Authenticate` before any token
   * is sent) and the ACR token exchange (the AAD token arrives in a form field).
   */
  verifyAccessToken(token: string): VerifiedPrincipal | undefined;
  /**
   * Azurite's blob endpoint for a storage account, `https://127.0.0.1:{blobPort}/{accountName}`,
   * or undefined when the sandbox runs without Azurite. Storage accounts report it as
   * `primaryEndpoints.blob`.
   */
  blobEndpointFor(accountName: string): string | undefined;
  /**
   * Publishes an event as the Azure service would to its Event Grid system topic (e.g.
   * `Microsoft.Web.SlotSwapCompleted`, `Microsoft.Resources.ResourceWriteSuccess`). The engine
   * adds `id`, `eventTime` (sandbox clock) and `metadataVersion`, and keeps the event in the
   * outbox at `GET /_sandbox/eventgrid` (Event Grid schema, or CloudEvents 1.0 with
   * `?schema=cloudevents`); nothing is delivered anywhere. Additive: optional so that test
   * contexts built by hand stay valid; the engine always provides it.
   */
  publishEvent?(event: SandboxEventGridEvent): void;
  /**
   * How long a long-running operation stays `InProgress` (the sandbox's `lroDurationMs`).
   * Providers time other transitions by it too, e.g. a web app's restart. Additive: optional
   * for hand-built test contexts; the engine always provides it.
   */
  operationDurationMs?(): number;
}

/** An Event Grid system-topic event as a provider publishes it (see {@link ProviderContext.publishEvent}). */
export interface SandboxEventGridEvent {
  /** The system topic: the ARM id of the source resource, resource group or subscription. */
  readonly topic: string;
  /** e.g. `/Microsoft.Web/sites/app-kilometers-api-k7x2` or the resource id. */
  readonly subject: string;
  /** e.g. `Microsoft.Web.SlotSwapCompleted`. */
  readonly eventType: string;
  readonly data: Readonly<Record<string, unknown>>;
  readonly dataVersion: string;
}

/**
 * A control endpoint a provider serves at `/_sandbox/{name}[/...]`: like the engine's own,
 * no token, not logged, throttled or faulted. The handler gets the path segments after
 * `{name}` and the parsed JSON body (`undefined` when empty); it answers 400 itself for a bad
 * body (`{ error: { code: 'InvalidControlRequest', message } }`).
 */
export interface ControlRoute {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** The first path segment after `/_sandbox/`, e.g. `health`. Must not be one of the engine's. */
  readonly name: string;
  readonly handler: (request: { readonly segments: readonly string[]; readonly body: unknown }, context: ProviderContext) => SandboxResponse;
}

/** Claims of a verified sandbox access token. */
export interface VerifiedPrincipal {
  readonly oid: string;
  /** Audience, e.g. `https://vault.azure.net` or `https://management.azure.com`. */
  readonly aud: string;
  readonly tid?: string;
  readonly scp?: string;
}

/** Azurite as the engine runs it (path-style URLs: the account is the first path segment). */
export interface SandboxStorageEndpoints {
  /** e.g. `https://127.0.0.1:41234` */
  readonly blobEndpoint: string;
  readonly tableEndpoint: string;
  /** `${blobEndpoint}/{name}` */
  readonly blobUrlTemplate: string;
  /** Base64 shared key (key1) per account name, as Azurite started. */
  readonly accountKeys: Readonly<Record<string, string>>;
  /** Base64 second key (key2) per account name, as Azurite started. */
  readonly secondaryAccountKeys: Readonly<Record<string, string>>;
  /** The CA that signed Azurite's certificate, for clients inside the sandbox. */
  readonly caPem: string;
  /**
   * Makes Azurite accept exactly these one or two keys for an account from its next request
   * on (a regenerated key, or none that anyone knows when shared-key access is off).
   */
  setAccountKeys(account: string, keys: readonly string[]): Promise<void>;
}

/** Where an emulated server's data really lives: connect there with `role` (superuser-free). */
export interface PostgresServerConnection {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** `{adminUser}@{serverName}`: roles are cluster-wide, admin logins per server. */
  readonly role: string;
}

/** The outcome of a real login attempt. */
export type PostgresLoginCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * The real PostgreSQL behind emulated flexible servers. Seeded servers share one cluster (one
 * database and admin role each); a server created by a point-in-time restore is a cluster of
 * its own, recovered from the base backup and the archived WAL up to the restore point. Clients
 * reach every server through the TLS front door, as Azure exposes it: the server's FQDN as the
 * TLS server name, the plain admin login and the server's database.
 */
export interface PostgresBackend {
  /** The main cluster (superuser access for the engine and tests). */
  readonly host: string;
  readonly port: number;
  /** The TLS front door every server is reached at (`127.0.0.1:{port}`), once open. */
  readonly frontDoor: { readonly host: string; readonly port: number } | undefined;
  /**
   * Creates (idempotently) a database and admin role for a server in the main cluster and runs
   * `seedSql`. `databaseAliases` are the database names clients may ask for (the app database,
   * e.g. `limpopo`); `postgres` always is one.
   */
  ensureServer(options: { serverName: string; adminUser: string; adminPassword: string; seedSql?: string; databaseAliases?: readonly string[] }): Promise<PostgresServerConnection>;
  /** Where a server lives, or undefined when the backend has none of that name. */
  connection(serverName: string): PostgresServerConnection | undefined;
  /** Changes a server's admin password (`ALTER ROLE ... PASSWORD`). */
  setAdminPassword(serverName: string, adminUser: string, password: string): Promise<void>;
  /**
   * Restores `sourceServer` as of `pointInTime` (real time, see `ProviderContext.realTimeAt`)
   * into a new server with its own cluster, database and admin role. The admin password is the
   * source's as of the restore point, as in Azure, where the role is part of the data.
   */
  restoreServer(options: { sourceServer: string; targetServer: string; pointInTime: Date; databaseAliases?: readonly string[] }): Promise<PostgresServerConnection>;
  /** Deletes a server's data (its cluster, or its database and role), ending its connections. */
  dropServer(serverName: string): Promise<void>;
  /** Whether the front door lets clients in (a stopped or provisioning server refuses them). */
  setAvailability(serverName: string, availability: { accepting: true } | { accepting: false; reason: string }): void;
  /** Logs in as a client would (the front door's mapping of login and database), then disconnects. */
  checkLogin(options: { serverName: string; user: string; password: string; database?: string }): Promise<PostgresLoginCheck>;
  /** Runs SQL as the superuser against a server's database (or a main-cluster database by name). */
  query(serverName: string, sql: string): Promise<Record<string, unknown>[]>;
}

/** One resource provider or data plane. */
export interface SandboxProvider {
  /** e.g. `Microsoft.Web`. */
  readonly name: string;
  /**
   * Seeds state from the world. `resources` holds the world entries whose `type` this provider
   * declared in `types`; the provider validates their `spec` itself and throws naming the
   * world file path on error.
   */
  readonly types: readonly string[];
  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): Promise<void> | void;
  routes(): readonly RouteDefinition[];
  /** Control endpoints under `/_sandbox/` (additive, optional), e.g. the app health scripts. */
  controlRoutes?(): readonly ControlRoute[];
  /** A JSON-serialisable snapshot for `GET /_sandbox/state`. */
  snapshot(): unknown;
  /**
   * Called once every provider of every world has seeded, e.g. for apps to start and resolve
   * the Key Vault references of their settings. Optional (additive).
   */
  afterSeed?(context: ProviderContext): Promise<void> | void;
  /**
   * Called as time passes: after every shift of the sandbox clock and about once a second, e.g.
   * for Key Vault's near-expiry events or an app's daily refresh of Key Vault references. Never
   * called twice at once. Optional (additive).
   */
  onClock?(now: Date, context: ProviderContext): Promise<void> | void;
}

/** A world file (`sandbox/worlds/*.yaml`). */
export interface WorldFile {
  /** Short name, e.g. `xshopai`. */
  readonly name: string;
  readonly description: string;
  readonly tenantId: string;
  readonly subscriptionId: string;
  /** Path, relative to the repository root, of the example estate config this world backs. */
  readonly exampleConfig?: string;
  /** Problems planted on purpose, for humans reading the demo. */
  readonly plantedProblems: readonly string[];
  readonly resources: readonly WorldResource[];
}

/** One resource in a world. */
export interface WorldResource {
  /** ARM type, e.g. `Microsoft.Web/sites`, or a data-plane type such as `Microsoft.ContainerRegistry/registries`. */
  readonly type: string;
  readonly resourceGroup: string;
  readonly name: string;
  readonly location: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** Provider-specific description (ages are relative, e.g. `createdDaysAgo: 40`). */
  readonly spec: Readonly<Record<string, unknown>>;
}
