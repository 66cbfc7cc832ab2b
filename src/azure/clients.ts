/**
 * The Azure client layer: one factory per SDK client, all built the same way.
 *
 * Every client gets the shared credential, the request budget of its throttling scope (ARM
 * subscription and principal, registry, vault), the extra CA from `settings.caFile` (in
 * addition to the system roots) and the endpoints of the configured cloud or their overrides.
 * The SDK's own retry policy stays in place; the budget only delays requests. Each SDK package
 * is imported on first use, so a function pays only for the clients it touches.
 */
import { Agent as HttpsAgent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { TokenCredential } from '@azure/core-auth';
import { createDefaultHttpClient, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import type { WebSiteManagementClient } from '@azure/arm-appservice';
import type { KeyVaultManagementClient } from '@azure/arm-keyvault';
import type { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import type { ResourceManagementClient } from '@azure/arm-resources';
import type { StorageManagementClient } from '@azure/arm-storage';
import type { ContainerRegistryManagementClient } from '@azure/arm-containerregistry';
import type { ContainerRegistryClient } from '@azure/container-registry';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { BlobServiceClient, StoragePipelineOptions } from '@azure/storage-blob';
import type { TableClient, TableServiceClientOptions } from '@azure/data-tables';
import type { AzureSettings } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { resolveAppUrl as resolveAppUrlFromSettings, resolveEndpoints, resolvePostgresEndpoint, type ResolvedEndpoints } from './cloud.ts';
import { createCredential, CredentialError, credentialKind, credentialKindLabel, isLoopbackUrl, labelCredentialFailures, readCaFile, SandboxCredential } from './credential.ts';
import { httpsExchange, HttpsExchangeError } from './https-exchange.ts';
import { BudgetRegistry, type RequestBudget } from './request-budget.ts';

export { resolveAppUrl } from './cloud.ts';

/** Options of {@link createAzureClients}. */
export interface AzureClientsOptions {
  /** Use this credential instead of the one the settings select. */
  readonly credential?: TokenCredential;
  /** Share budgets with other client sets (e.g. one registry per process). */
  readonly budgets?: BudgetRegistry;
  /**
   * Identifies the principal for ARM budgets (ARM throttles per subscription and principal).
   * Defaults to `managedIdentityClientId` or `default`.
   */
  readonly principal?: string;
  /** Environment used to pick the credential; defaults to `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Tuning of the SDK's own retry policy (which stays the only retry). Defaults are the SDK's:
   * 3 retries, exponential from 1 s; tests shorten the delays.
   */
  readonly retryOptions?: { readonly maxRetries?: number; readonly retryDelayInMs?: number; readonly maxRetryDelayInMs?: number };
}

/** Result of {@link httpsGet}. */
export interface HttpsGetResult {
  readonly url: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The start of the body (at most `maxBodyBytes`), as UTF-8. */
  readonly body: string;
  /** True when the body was longer than what `body` holds. */
  readonly truncated: boolean;
}

/** Thrown when a health-check request gets no HTTP response (refused, TLS failure, timeout). */
export class HttpsGetError extends OpsAutopilotError {
  override readonly name: string = 'HttpsGetError';
}

/** Options of {@link httpsGet}. */
export interface HttpsGetOptions {
  readonly timeoutMs: number;
  /** Agent carrying the trusted CAs; the default agent trusts the system roots only. */
  readonly agent?: HttpsAgent;
  /** Default 4096. */
  readonly maxBodyBytes?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/**
 * GETs an https URL and returns the status and the start of the body, within `timeoutMs` for
 * the whole exchange; redirects are not followed (a health endpoint that redirects is reported
 * as such). Sent with the SDK's HTTP client (see {@link httpsExchange}).
 *
 * @throws {@link HttpsGetError} when no response arrives within `timeoutMs` or the connection fails.
 */
export async function httpsGet(url: string, options: HttpsGetOptions): Promise<HttpsGetResult> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:') {
    throw new HttpsGetError(`GET ${url}: expected an https:// URL, found ${parsed.protocol}`, { context: { url } });
  }
  try {
    const result = await httpsExchange(url, {
      method: 'GET',
      timeoutMs: options.timeoutMs,
      headers: { accept: '*/*', 'user-agent': 'ops-autopilot-health', ...options.headers },
      maxBodyBytes: options.maxBodyBytes ?? 4096,
      ...(options.agent === undefined ? {} : { agent: options.agent }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { url, ...result };
  } catch (error) {
    const reason = error instanceof HttpsExchangeError && error.reason === 'timeout' ? 'no response (timed out)' : errorMessage(error);
    throw new HttpsGetError(`GET ${url} failed: expected an HTTP response within ${options.timeoutMs} ms, found ${reason}`, { context: { url }, cause: error });
  }
}

/** What every SDK client's options receive. */
interface CommonOptions {
  agent?: HttpsAgent;
  retryOptions?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  additionalPolicies: { policy: PipelinePolicy; position: 'perRetry' }[];
}

/**
 * The client layer of one estate: builds and caches one SDK client per key, all sharing a
 * credential, CA trust and request budgets.
 */
export class AzureClients {
  /** The endpoints in use, after the cloud and the overrides. */
  readonly endpoints: ResolvedEndpoints;
  /** The budgets handed to the clients; read their `stats()` in tests and benchmarks. */
  readonly budgets: BudgetRegistry;
  private readonly principal: string;
  private readonly cache = new Map<string, Promise<unknown>>();
  private credentialPromise: Promise<TokenCredential> | undefined;
  private sdkCredentialPromise: Promise<TokenCredential> | undefined;
  private agentPromise: Promise<HttpsAgent | undefined> | undefined;
  private caPromise: Promise<string | undefined> | undefined;

  constructor(
    readonly settings: AzureSettings,
    private readonly options: AzureClientsOptions = {},
  ) {
    this.endpoints = resolveEndpoints(settings);
    this.budgets = options.budgets ?? new BudgetRegistry(settings.requestBudget);
    this.principal = options.principal ?? settings.managedIdentityClientId ?? 'default';
  }

  /** The shared credential (built on first use). */
  credential(): Promise<TokenCredential> {
    this.credentialPromise ??= this.buildCredential();
    return this.credentialPromise;
  }

  /**
   * The credential the SDK clients get: the shared one, with failures labelled by credential
   * kind and scope, so `toAzureError` can say in one line which credential failed.
   */
  private sdkCredential(): Promise<TokenCredential> {
    this.sdkCredentialPromise ??= (async () => {
      const credential = await this.credential();
      const kind =
        this.options.credential === undefined || credential instanceof SandboxCredential
          ? credentialKindLabel(credential instanceof SandboxCredential ? 'sandbox' : credentialKind(this.settings, this.options.env))
          : 'supplied credential';
      return labelCredentialFailures(credential, kind);
    })();
    return this.sdkCredentialPromise;
  }

  /**
   * The https agent trusting the system roots plus `settings.caFile`, or undefined when no CA
   * file is configured (the SDK's default agent then applies). The file is read once.
   */
  agent(): Promise<HttpsAgent | undefined> {
    this.agentPromise ??= (async () => {
      const pem = await this.caPem();
      return pem === undefined ? undefined : new HttpsAgent({ keepAlive: true, ca: [...rootCertificates, pem] });
    })();
    return this.agentPromise;
  }

  /** The PEM of `settings.caFile`, read once. */
  private caPem(): Promise<string | undefined> {
    this.caPromise ??= this.settings.caFile === undefined ? Promise.resolve(undefined) : readCaFile(this.settings.caFile);
    return this.caPromise;
  }

  /**
   * Where and how to open a TLS connection to a flexible server (for `pg`): the address from
   * `azure.postgresUrlTemplate`, TLS always on and verified against the FQDN, trusting the
   * system roots plus `azure.caFile`.
   */
  async postgresTls(fullyQualifiedDomainName: string): Promise<{ host: string; port: number; ssl: { servername: string; ca?: string[]; rejectUnauthorized: true } }> {
    const endpoint = resolvePostgresEndpoint(this.settings, fullyQualifiedDomainName);
    const pem = await this.caPem();
    return {
      host: endpoint.host,
      port: endpoint.port,
      ssl: { servername: endpoint.servername, ...(pem === undefined ? {} : { ca: [...rootCertificates, pem] }), rejectUnauthorized: true },
    };
  }

  /** The ARM budget of a subscription for this principal. */
  armBudget(subscriptionId: string): RequestBudget {
    return this.budgets.arm(subscriptionId, this.principal);
  }

  /** App Service / Functions management client. */
  webClient(subscriptionId: string): Promise<WebSiteManagementClient> {
    return this.cached(`web:${subscriptionId.toLowerCase()}`, async () => {
      const { WebSiteManagementClient } = await import('@azure/arm-appservice');
      return new WebSiteManagementClient(await this.sdkCredential(), subscriptionId, await this.modularArmOptions(subscriptionId));
    });
  }

  /** Container Apps management client. */
  containerAppsClient(subscriptionId: string): Promise<ContainerAppsAPIClient> {
    return this.cached(`containerapps:${subscriptionId.toLowerCase()}`, async () => {
      const { ContainerAppsAPIClient } = await import('@azure/arm-appcontainers');
      return new ContainerAppsAPIClient(await this.sdkCredential(), subscriptionId, await this.classicArmOptions(subscriptionId));
    });
  }

  /** PostgreSQL flexible server management client. */
  postgresClient(subscriptionId: string): Promise<PostgreSQLManagementFlexibleServerClient> {
    return this.cached(`postgres:${subscriptionId.toLowerCase()}`, async () => {
      const { PostgreSQLManagementFlexibleServerClient } = await import('@azure/arm-postgresql-flexible');
      return new PostgreSQLManagementFlexibleServerClient(await this.sdkCredential(), subscriptionId, await this.classicArmOptions(subscriptionId));
    });
  }

  /** Resource Manager's generic resource client (scope discovery: the resources list operations). */
  resourcesClient(subscriptionId: string): Promise<ResourceManagementClient> {
    return this.cached(`resources:${subscriptionId.toLowerCase()}`, async () => {
      const { ResourceManagementClient } = await import('@azure/arm-resources');
      return new ResourceManagementClient(await this.sdkCredential(), subscriptionId, await this.classicArmOptions(subscriptionId));
    });
  }

  /** Storage management client. */
  storageClient(subscriptionId: string): Promise<StorageManagementClient> {
    return this.cached(`storage:${subscriptionId.toLowerCase()}`, async () => {
      const { StorageManagementClient } = await import('@azure/arm-storage');
      return new StorageManagementClient(await this.sdkCredential(), subscriptionId, await this.modularArmOptions(subscriptionId));
    });
  }

  /** Key Vault management client (vault properties, not secrets). */
  keyVaultManagementClient(subscriptionId: string): Promise<KeyVaultManagementClient> {
    return this.cached(`keyvaultmgmt:${subscriptionId.toLowerCase()}`, async () => {
      const { KeyVaultManagementClient } = await import('@azure/arm-keyvault');
      return new KeyVaultManagementClient(await this.sdkCredential(), subscriptionId, await this.modularArmOptions(subscriptionId));
    });
  }

  /** Key Vault secrets data-plane client for a vault. */
  secretClient(vaultName: string): Promise<SecretClient> {
    return this.cached(`secrets:${vaultName.toLowerCase()}`, async () => {
      const { SecretClient } = await import('@azure/keyvault-secrets');
      const common = await this.common(this.budgets.keyVault(vaultName));
      return new SecretClient(this.endpoints.keyVaultUrl(vaultName), await this.sdkCredential(), {
        ...common,
        disableChallengeResourceVerification: !this.settings.keyVaultChallengeResourceVerification,
      });
    });
  }

  /**
   * Container registry data-plane client for a registry (token exchange included). Its endpoint
   * is `containerRegistryUrlTemplate` when set, else `https://{loginServer}` with the login
   * server ARM reports (`properties.loginServer`) when the caller read it, else the cloud's
   * `{name}.azurecr.io`.
   */
  registryClient(registryName: string, options: { readonly loginServer?: string } = {}): Promise<ContainerRegistryClient> {
    const endpoint = this.endpoints.containerRegistryUrl(registryName, options.loginServer);
    return this.cached(`acr:${endpoint.toLowerCase()}`, async () => {
      const { ContainerRegistryClient } = await import('@azure/container-registry');
      const common = await this.common(this.budgets.acr(registryName));
      return new ContainerRegistryClient(endpoint, await this.sdkCredential(), {
        ...common,
        audience: this.endpoints.containerRegistryAudience,
      });
    });
  }

  /** Container Registry management client (the registry resource in ARM: login server, SKU). */
  containerRegistryManagementClient(subscriptionId: string): Promise<ContainerRegistryManagementClient> {
    return this.cached(`acrmgmt:${subscriptionId.toLowerCase()}`, async () => {
      const { ContainerRegistryManagementClient } = await import('@azure/arm-containerregistry');
      return new ContainerRegistryManagementClient(await this.sdkCredential(), subscriptionId, await this.modularArmOptions(subscriptionId));
    });
  }

  /**
   * Blob service client for a storage account name, or for a full blob service URL (e.g. a
   * run-record store). Requests draw on the account's budget ({@link BudgetRegistry.storage})
   * through the HTTP client: storage-blob rebuilds the pipeline of every derived client
   * (container, blob) from the same options, so a budget policy would be added twice, while
   * the one HTTP client is shared by all of them.
   */
  blobServiceClient(accountNameOrUrl: string): Promise<BlobServiceClient> {
    const url = accountNameOrUrl.startsWith('https://') ? accountNameOrUrl.replace(/\/+$/, '') : this.endpoints.blobUrl(accountNameOrUrl);
    return this.cached(`blob:${url.toLowerCase()}`, async () => {
      // The schema refuses this already; a settings object built by hand must not get past it
      // either: sandbox tokens only ever go to loopback.
      if (this.settings.sandboxTokenEndpoint !== undefined && !isLoopbackUrl(url)) {
        throw new CredentialError(`refusing the sandbox credential for blob service ${new URL(url).origin}: expected an https loopback address`, { context: { url: new URL(url).origin } });
      }
      const { BlobServiceClient } = await import('@azure/storage-blob');
      // Lazily, like the SDK: it loads @azure/core-http-compat, which only blob needs.
      const { storageHttpClient } = await import('./storage-http-client.ts');
      const agent = await this.agent();
      const budget = this.budgets.storage(storageAccountOfBlobUrl(url));
      // StoragePipelineOptions does not declare `agent`, but storage-blob hands its options to
      // core-rest-pipeline's createPipelineFromOptions, whose agent policy sets it on each
      // request; the default HttpClient sends with the request's agent (checked by the sandbox
      // tests against Azurite with the sandbox CA).
      const retry = this.options.retryOptions;
      const options: StoragePipelineOptions & { agent?: HttpsAgent } = {
        audience: this.endpoints.storageScope,
        httpClient: storageHttpClient(budget.httpClient(createDefaultHttpClient())),
        // storage-blob's own defaults wait 4 s doubling to 120 s with no per-try bound: an
        // unreachable store held a CLI run for over a minute before it could say so. The same
        // tuning as every other client (3 retries from 1 s), each delay at most 30 s; each try is
        // bounded by the request budget's attempt timeout.
        retryOptions: {
          maxTries: (retry?.maxRetries ?? 3) + 1,
          retryDelayInMs: retry?.retryDelayInMs ?? 1000,
          maxRetryDelayInMs: retry?.maxRetryDelayInMs ?? 30_000,
        },
        ...(agent === undefined ? {} : { agent }),
      };
      return new BlobServiceClient(url, await this.sdkCredential(), options);
    });
  }

  /**
   * A blob service client of an account that authenticates with an account key (shared key),
   * for checking that a storage key still works (credential rotation). Never cached: the key is
   * a secret and changes. Same endpoint, CA trust and request budget as {@link blobServiceClient}.
   */
  async blobServiceClientWithKey(accountName: string, accountKey: string): Promise<BlobServiceClient> {
    const url = this.endpoints.blobUrl(accountName);
    if (this.settings.sandboxTokenEndpoint !== undefined && !isLoopbackUrl(url)) {
      throw new CredentialError(`refusing to send a storage key to blob service ${new URL(url).origin} under the sandbox credential: expected an https loopback address`, { context: { url: new URL(url).origin } });
    }
    const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
    const { storageHttpClient } = await import('./storage-http-client.ts');
    const agent = await this.agent();
    const budget = this.budgets.storage(storageAccountOfBlobUrl(url));
    const options: StoragePipelineOptions & { agent?: HttpsAgent } = {
      httpClient: storageHttpClient(budget.httpClient(createDefaultHttpClient())),
      retryOptions: { maxTries: 2 },
      ...(agent === undefined ? {} : { agent }),
    };
    return new BlobServiceClient(url, new StorageSharedKeyCredential(accountName, accountKey), options);
  }

  /**
   * Table client of one table in a storage account's Table service, given the account name or
   * the full Table service URL (e.g. Azurite's path-style `https://127.0.0.1:10002/<account>`).
   * Requests draw on the same per-account budget as blob ({@link BudgetRegistry.storage}: Azure
   * Storage's scalability target is per account, whichever service is called) through the HTTP
   * client, as for blob. The table itself is not created here; see `src/state/tables.ts`.
   */
  tableClient(accountNameOrUrl: string, tableName: string): Promise<TableClient> {
    const url = accountNameOrUrl.startsWith('https://') ? accountNameOrUrl.replace(/\/+$/, '') : this.endpoints.tableUrl(accountNameOrUrl);
    return this.cached(`table:${url.toLowerCase()}:${tableName.toLowerCase()}`, async () => {
      const { TableClient } = await import('@azure/data-tables');
      const agent = await this.agent();
      const budget = this.budgets.storage(storageAccountOfBlobUrl(url));
      // As for blob: `agent` reaches core-rest-pipeline's agent policy through the options.
      const options: TableServiceClientOptions & { agent?: HttpsAgent } = {
        httpClient: budget.httpClient(createDefaultHttpClient()),
        ...(this.options.retryOptions === undefined ? {} : { retryOptions: { ...this.options.retryOptions } }),
        ...(agent === undefined ? {} : { agent }),
      };
      return new TableClient(url, tableName, await this.sdkCredential(), options);
    });
  }

  /**
   * GETs one ARM resource or list page (`path` from `/subscriptions/...`, or an absolute
   * `nextLink` on the ARM endpoint) for the resource types without an SDK package in this app
   * (Microsoft.Insights metric alerts and action groups). Same credential, CA trust, retry and
   * subscription budget as the SDK clients: the budget is the HTTP client, so every attempt
   * draws a token. Non-2xx answers throw a `RestError`; callers wrap calls in `callAzure`.
   */
  async armGet(subscriptionId: string, pathOrUrl: string, apiVersion: string): Promise<unknown> {
    const pipeline = await this.cached(`armget:${subscriptionId.toLowerCase()}`, async () => {
      const { bearerTokenAuthenticationPolicy, createPipelineFromOptions } = await import('@azure/core-rest-pipeline');
      const agent = await this.agent();
      const built = createPipelineFromOptions({
        ...(agent === undefined ? {} : { agent }),
        ...(this.options.retryOptions === undefined ? {} : { retryOptions: { ...this.options.retryOptions } }),
      });
      built.addPolicy(bearerTokenAuthenticationPolicy({ credential: await this.sdkCredential(), scopes: [this.endpoints.resourceManagerScope] }), { phase: 'Sign' });
      return { pipeline: built, httpClient: this.armBudget(subscriptionId).httpClient(createDefaultHttpClient()) };
    });
    const base = this.endpoints.resourceManager.replace(/\/+$/, '');
    const url = new URL(pathOrUrl.startsWith('https://') ? pathOrUrl : `${base}${pathOrUrl}`);
    if (url.origin !== new URL(base).origin) throw new RangeError(`armGet: expected a URL on ${new URL(base).origin}, found ${url.origin}`);
    if (!url.searchParams.has('api-version')) url.searchParams.set('api-version', apiVersion);
    const { createPipelineRequest, RestError } = await import('@azure/core-rest-pipeline');
    const request = createPipelineRequest({ url: url.toString(), method: 'GET', headers: undefined });
    request.headers.set('accept', 'application/json');
    const response = await pipeline.pipeline.sendRequest(pipeline.httpClient, request);
    let body: unknown;
    try {
      const text = response.bodyAsText ?? '';
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.status < 200 || response.status >= 300) {
      const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new RestError(error?.message ?? `GET ${url.pathname}: HTTP ${String(response.status)}`, { statusCode: response.status, ...(error?.code === undefined ? {} : { code: error.code }), request, response });
    }
    return body;
  }

  /** The URL of an app path for health checks (see {@link resolveAppUrl}). */
  appUrl(host: string, path: string): string {
    return resolveAppUrlFromSettings(this.settings, host, path);
  }

  /** GETs an app URL trusting the same CAs as the SDK clients. */
  async httpsGet(url: string, options: Omit<HttpsGetOptions, 'agent'>): Promise<HttpsGetResult> {
    const agent = await this.agent();
    return httpsGet(url, { ...options, ...(agent === undefined ? {} : { agent }) });
  }

  /** Closes idle keep-alive sockets of the CA agent, so a test process can exit promptly. */
  async close(): Promise<void> {
    const agent = await this.agentPromise;
    agent?.destroy();
  }

  private buildCredential(): Promise<TokenCredential> {
    if (this.options.credential !== undefined) return Promise.resolve(this.options.credential);
    return (async () => {
      const pem = await this.caPem();
      return createCredential(this.settings, {
        ...(this.options.env === undefined ? {} : { env: this.options.env }),
        ...(pem === undefined ? {} : { ca: pem }),
      });
    })();
  }

  private async common(budget: RequestBudget): Promise<CommonOptions> {
    const agent = await this.agent();
    return {
      ...(agent === undefined ? {} : { agent }),
      ...(this.options.retryOptions === undefined ? {} : { retryOptions: { ...this.options.retryOptions } }),
      // Inside the retry loop (after signing), so every attempt and every LRO poll draws a token.
      additionalPolicies: [{ policy: budget.policy(), position: 'perRetry' }],
    };
  }

  /** Options of the TypeSpec-generated ARM clients (appservice 19, storage 20, keyvault 5, containerregistry 12). */
  private async modularArmOptions(subscriptionId: string): Promise<CommonOptions & { endpoint: string; credentials: { scopes: string[] } }> {
    return {
      ...(await this.common(this.armBudget(subscriptionId))),
      endpoint: this.endpoints.resourceManager,
      // These clients default the scope to public-cloud ARM whatever the endpoint; set it.
      credentials: { scopes: [this.endpoints.resourceManagerScope] },
    };
  }

  /** Options of the AutoRest-generated ARM clients (appcontainers 3, postgresql-flexible 9, resources 6). */
  private async classicArmOptions(
    subscriptionId: string,
  ): Promise<CommonOptions & { endpoint: string; $host: string; credentialScopes: string[] }> {
    return {
      ...(await this.common(this.armBudget(subscriptionId))),
      endpoint: this.endpoints.resourceManager,
      $host: this.endpoints.resourceManager,
      credentialScopes: [this.endpoints.resourceManagerScope],
    };
  }

  private cached<T>(key: string, build: () => Promise<T>): Promise<T> {
    let entry = this.cache.get(key) as Promise<T> | undefined;
    if (entry === undefined) {
      entry = build();
      // A failed build (unreadable CA file, refused credential) must not be cached forever.
      entry.catch(() => {
        this.cache.delete(key);
      });
      this.cache.set(key, entry);
    }
    return entry;
  }
}

/**
 * The storage account a blob (or table) service URL belongs to: the first DNS label in Azure
 * (`https://{account}.blob.core.windows.net`), the first path segment for an IP or loopback
 * host (Azurite's path-style `https://127.0.0.1:10000/{account}`).
 */
export function storageAccountOfBlobUrl(url: string): string {
  const parsed = new URL(url);
  const host = parsed.hostname;
  const pathStyle = host === 'localhost' || /^[\d.]+$/.test(host) || host.startsWith('[');
  const account = pathStyle ? parsed.pathname.split('/').find((segment) => segment !== '') : host.split('.')[0];
  return account ?? host;
}

/** Creates the client layer for these settings. */
export function createAzureClients(settings: AzureSettings, options?: AzureClientsOptions): AzureClients {
  return new AzureClients(settings, options);
}
