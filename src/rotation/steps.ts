/**
 * The steps of a credential rotation, one per durable activity, as plain functions over the
 * runbook context (config, clients, clock). Inputs and outputs are references — vault, secret
 * name, version — and facts; a value is read from Key Vault (or from Azure, for a regenerated
 * storage key) inside the step that needs it and never returned, logged or put in an error.
 * Every step is idempotent, because an activity may run more than once: what a step writes is
 * tagged with the rotation's owner, and a re-run finds it instead of writing it again.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { delay } from '@azure/core-util';
import type { SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import type { AzureClients } from '../azure/clients.ts';
import { callAzure, ResourceConflictError, ResourceNotFoundError, toAzureError } from '../azure/errors.ts';
import { parseResourceId } from '../azure/resource-id.ts';
import type { RotationPolicy } from '../config/rotation-schema.ts';
import type { EstateConfig } from '../config/schema.ts';
import { errorMessage, OpsAutopilotError } from '../errors.ts';
import { sendRunNotifications } from '../notify/send-notifications.ts';
import type { RunbookContext } from '../runbooks/runbook.ts';
import { createRunRecordStore } from '../runs/run-record-store.ts';
import { startRun, type RunRecord, type RunTrigger } from '../runs/run-record.ts';
import { redactString } from '../runs/secret-guard.ts';
import { createStateTables, hasStateStore, stateKey, STATE_TABLES, type StateEntity } from '../state/tables.ts';
import { connectAsAdmin } from '../restore/data-checks.ts';
import { ROTATION_TAGS as T } from './names.ts';

/** Most versions read when looking for what an earlier attempt wrote. */
const MAX_VERSIONS_READ = 500;
/** A PostgreSQL password reset (a long-running PATCH) that is not done after this long has failed. */
const RESET_DEADLINE_MS = 10 * 60_000;
/** A lock older than this is taken over: no rotation holds a secret for longer. */
const LOCK_MAX_HOLD_MS = 6 * 3_600_000;

/** One secret version, by reference: never its value. */
export interface SecretRef {
  readonly vault: string;
  readonly name: string;
  readonly version: string;
}

/** The request is not one the estate's policies allow (no policy, bad name). Nothing was changed. */
export class RotationRequestError extends OpsAutopilotError {
  override readonly name: string = 'RotationRequestError';
}

/** Another rotation holds the secret's lock. */
export class RotationLockHeldError extends OpsAutopilotError {
  override readonly name: string = 'RotationLockHeldError';
}

/** A step could not do what it must (messages never hold a value). */
export class RotationStepError extends OpsAutopilotError {
  override readonly name: string = 'RotationStepError';
}

/** What the orchestration needs of a policy (no secrets). */
export interface RotationPlan {
  readonly vault: string;
  /** ARM id of the vault target. */
  readonly vaultId: string;
  readonly secret: string;
  readonly kind: RotationPolicy['kind'];
  /** The secret's latest version (what versionless references resolve to), if any. */
  readonly current?: { readonly version: string; readonly enabled: boolean; readonly createdOn?: string; readonly expiresOn?: string; readonly credentialId?: string; readonly state?: string };
  /** Whether the current credential works now (a real login, a real storage request, or a readable value). */
  readonly currentWorks: boolean;
  readonly currentDetail: string;
  /** The request named a version that is no longer the latest: it was rotated already. */
  readonly stale: boolean;
  /** Whether the policy says it is time (expiry within rotateBeforeExpiryDays, or older than rotateEveryDays). */
  readonly due: boolean;
  readonly dueDetail: string;
  /** For a storage key: the key that is not in use, which the rotation regenerates. */
  readonly nextCredentialId?: 'key1' | 'key2';
  readonly consumers: readonly { readonly id: string; readonly pickUp: 'restart' | 'refresh' }[];
  readonly derived: readonly string[];
  readonly verify: RotationPolicy['verify'];
  readonly graceHours: number;
  readonly validityDays: number;
  /** ARM id of the server or storage account the credential belongs to. */
  readonly resourceId?: string;
  /** What a run will do, in order, for a dry run and the record. */
  readonly steps: readonly string[];
}

/** The vault target and its rotation policy for one secret; a {@link RotationRequestError} when the estate has none. */
export function rotationPolicyOf(config: EstateConfig, vault: string, secret: string): { readonly vaultId: string; readonly policy: RotationPolicy } {
  for (const target of config.targets) {
    if (target.rotation === undefined) continue;
    const id = parseResourceId(target.id);
    if (id.name.toLowerCase() !== vault.toLowerCase()) continue;
    const policy = target.rotation.secrets.find((candidate) => candidate.secret.toLowerCase() === secret.toLowerCase());
    if (policy !== undefined) return { vaultId: target.id, policy };
  }
  throw new RotationRequestError(`${vault}/${secret}: expected a Key Vault target of estate ${config.estate} with a rotation policy for this secret, found none`, { context: { vault, secret } });
}

/** Every secret with a rotation policy in the estate. */
export function rotatedSecrets(config: EstateConfig): { readonly vault: string; readonly secret: string }[] {
  return config.targets.flatMap((target) => (target.rotation === undefined ? [] : target.rotation.secrets.map((policy) => ({ vault: parseResourceId(target.id).name, secret: policy.secret }))));
}

const ALPHABETS = {
  alphanumeric: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  hex: '0123456789abcdef',
} as const;

/** A random secret from a cryptographic RNG: `length` characters of the alphabet (base64url: `length` characters of random bytes). */
export function generateSecret(length: number, alphabet: 'alphanumeric' | 'base64url' | 'hex'): string {
  if (alphabet === 'base64url') return randomBytes(Math.ceil((length * 3) / 4)).toString('base64url').slice(0, length);
  const chars = ALPHABETS[alphabet];
  let out = '';
  // randomInt draws without modulo bias.
  for (let index = 0; index < length; index += 1) out += chars[randomInt(chars.length)] ?? '';
  return out;
}

/**
 * A PostgreSQL admin password Azure accepts: at least three of upper case, lower case, digits and
 * other characters (here all four, one of each guaranteed), URL-safe so connection strings need
 * no care beyond encoding.
 */
export function generatePassword(length: number): string {
  const groups = ['ABCDEFGHJKLMNPQRSTUVWXYZ', 'abcdefghijkmnopqrstuvwxyz', '23456789', '-_.~'];
  const all = groups.join('');
  const chars = groups.map((group) => group[randomInt(group.length)] ?? '');
  while (chars.length < length) chars.push(all[randomInt(all.length)] ?? '');
  for (let index = chars.length - 1; index > 0; index -= 1) {
    const other = randomInt(index + 1);
    [chars[index], chars[other]] = [chars[other] ?? '', chars[index] ?? ''];
  }
  return chars.join('');
}

async function secretClient(ctx: RunbookContext, vault: string): Promise<SecretClient> {
  return ctx.clients.secretClient(vault);
}

/** Every version's properties (no values), oldest first by creation. */
async function versions(client: SecretClient, vault: string, name: string): Promise<SecretProperties[]> {
  const found: SecretProperties[] = [];
  try {
    for await (const properties of client.listPropertiesOfSecretVersions(name)) {
      found.push(properties);
      if (found.length >= MAX_VERSIONS_READ) break;
    }
  } catch (error) {
    const typed = toAzureError(error, { resourceId: `${vault}/secrets/${name}`, operation: 'list secret versions' });
    if (!(typed instanceof ResourceNotFoundError)) throw typed;
  }
  return found.sort((a, b) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0));
}

/** The latest version (what a reference without a version resolves to). */
async function latestVersion(client: SecretClient, vault: string, name: string): Promise<SecretProperties | undefined> {
  const all = await versions(client, vault, name);
  return all[all.length - 1];
}

/** The newest version whose tags include all of `match`. */
async function findTagged(client: SecretClient, vault: string, name: string, match: Readonly<Record<string, string>>): Promise<SecretProperties | undefined> {
  const all = await versions(client, vault, name);
  return all.reverse().find((properties) => Object.entries(match).every(([key, value]) => properties.tags?.[key] === value));
}

/** The value of one version, for the call that needs it only. */
async function readValue(ctx: RunbookContext, ref: SecretRef): Promise<string> {
  const client = await secretClient(ctx, ref.vault);
  const bundle = await callAzure({ resourceId: `${ref.vault}/secrets/${ref.name}/${ref.version}`, operation: 'get secret' }, () => client.getSecret(ref.name, { version: ref.version }));
  if (bundle.value === undefined || bundle.value === '') throw new RotationStepError(`${ref.vault}/${ref.name}/${ref.version}: expected a value, found an empty secret`);
  return bundle.value;
}

async function setVersion(ctx: RunbookContext, vault: string, name: string, value: string, options: { tags: Record<string, string>; expiresOn?: Date; contentType?: string }): Promise<SecretRef> {
  const client = await secretClient(ctx, vault);
  const stored = await callAzure({ resourceId: `${vault}/secrets/${name}`, operation: 'set secret' }, () =>
    client.setSecret(name, value, { tags: options.tags, ...(options.expiresOn === undefined ? {} : { expiresOn: options.expiresOn }), ...(options.contentType === undefined ? {} : { contentType: options.contentType }) }),
  );
  if (stored.properties.version === undefined) throw new RotationStepError(`${vault}/${name}: expected Key Vault to report the new version, found none`);
  return { vault, name, version: stored.properties.version };
}

/** A message that may quote a server's error, with the value cut out and secret-looking text masked. */
function safeMessage(error: unknown, value: string): string {
  const text = errorMessage(error);
  return redactString(value === '' ? text : text.split(value).join('[redacted]').split(encodeURIComponent(value)).join('[redacted]')).slice(0, 400);
}

function serverOf(plan: Pick<RotationPlan, 'resourceId' | 'vault' | 'secret'>): ReturnType<typeof parseResourceId> {
  if (plan.resourceId === undefined) throw new RotationStepError(`${plan.vault}/${plan.secret}: expected the policy to name the server or storage account, found none`);
  return parseResourceId(plan.resourceId);
}

/** Checks a credential for real: a PostgreSQL login, a storage request with the key, or a readable value. */
async function credentialWorks(ctx: RunbookContext, policy: RotationPolicy, ref: SecretRef): Promise<{ works: boolean; detail: string }> {
  let value: string;
  try {
    value = await readValue(ctx, ref);
  } catch (error) {
    return { works: false, detail: `version ${ref.version} cannot be read: ${errorMessage(error)}` };
  }
  if (policy.kind === 'random') return { works: true, detail: `version ${ref.version} is enabled and readable` };
  if (policy.kind === 'postgresAdminPassword') {
    const id = parseResourceId(policy.server);
    const pg = await ctx.clients.postgresClient(id.subscriptionId);
    const server = await callAzure({ resourceId: policy.server, operation: 'get server' }, () => pg.servers.get(id.resourceGroup, id.name));
    const fqdn = server.fullyQualifiedDomainName ?? `${id.name}.postgres.database.azure.com`;
    const login = server.administratorLogin ?? '';
    try {
      const client = await connectAsAdmin(ctx.clients, fqdn, login, value, policy.database);
      await client.query('SELECT 1');
      await client.end();
      return { works: true, detail: `version ${ref.version} logs in to ${fqdn} as ${login}` };
    } catch (error) {
      return { works: false, detail: `version ${ref.version} does not log in to ${fqdn} as ${login}: ${safeMessage(error, value)}` };
    }
  }
  const account = parseResourceId(policy.storageAccount).name;
  try {
    const blob = await ctx.clients.blobServiceClientWithKey(account, value);
    await blob.getProperties();
    return { works: true, detail: `version ${ref.version} authenticates to storage account ${account}` };
  } catch (error) {
    return { works: false, detail: `version ${ref.version} does not authenticate to storage account ${account}: ${safeMessage(error, value)}` };
  }
}

/** Input of the plan step. */
export interface PlanStepInput {
  readonly vault: string;
  readonly secret: string;
  /** The version an event named: when it is no longer the latest, the plan is stale. */
  readonly expectedVersion?: string;
  /** The orchestration's clock (ISO). */
  readonly now: string;
}

/** Reads the policy, the current version (no value) and whether it works; decides due and stale. Changes nothing. */
export async function planStep(ctx: RunbookContext, input: PlanStepInput): Promise<RotationPlan> {
  const { vaultId, policy } = rotationPolicyOf(ctx.config, input.vault, input.secret);
  const vault = parseResourceId(vaultId).name;
  const client = await secretClient(ctx, vault);
  const latest = await latestVersion(client, vault, policy.secret);
  const now = new Date(input.now);
  const current =
    latest?.version === undefined
      ? undefined
      : {
          version: latest.version,
          enabled: latest.enabled !== false,
          ...(latest.createdOn === undefined ? {} : { createdOn: latest.createdOn.toISOString() }),
          ...(latest.expiresOn === undefined ? {} : { expiresOn: latest.expiresOn.toISOString() }),
          ...(latest.tags?.[T.credentialId] === undefined ? {} : { credentialId: latest.tags[T.credentialId] }),
          ...(latest.tags?.[T.state] === undefined ? {} : { state: latest.tags[T.state] }),
        };
  let currentWorks = false;
  let currentDetail = 'the secret has no version yet';
  if (current !== undefined) {
    const checked = current.enabled ? await credentialWorks(ctx, policy, { vault, name: policy.secret, version: current.version }) : { works: false, detail: `version ${current.version} is disabled` };
    currentWorks = checked.works;
    currentDetail = checked.detail;
  }
  const stale = input.expectedVersion !== undefined && current !== undefined && current.version.toLowerCase() !== input.expectedVersion.trim().toLowerCase();
  const day = 86_400_000;
  let due = current === undefined;
  let dueDetail = current === undefined ? 'no version yet' : 'not due';
  if (current?.expiresOn !== undefined) {
    const left = (new Date(current.expiresOn).getTime() - now.getTime()) / day;
    if (left <= policy.rotateBeforeExpiryDays) {
      due = true;
      dueDetail = left < 0 ? `expired ${Math.round(-left)} day(s) ago` : `expires in ${Math.round(left)} day(s) (rotateBeforeExpiryDays ${policy.rotateBeforeExpiryDays})`;
    } else dueDetail = `expires in ${Math.round(left)} day(s)`;
  } else if (current !== undefined) dueDetail = 'no expiry set';
  if (!due && policy.rotateEveryDays !== undefined && current?.createdOn !== undefined) {
    const age = (now.getTime() - new Date(current.createdOn).getTime()) / day;
    if (age >= policy.rotateEveryDays) {
      due = true;
      dueDetail = `${Math.round(age)} day(s) old (rotateEveryDays ${policy.rotateEveryDays})`;
    }
  }
  let nextCredentialId: 'key1' | 'key2' | undefined;
  if (policy.kind === 'storageAccountKey') nextCredentialId = current?.credentialId?.toLowerCase() === 'key2' ? 'key1' : 'key2';
  const resourceId = policy.kind === 'postgresAdminPassword' ? policy.server : policy.kind === 'storageAccountKey' ? policy.storageAccount : undefined;
  const consumers = policy.consumers.map((consumer) => ({ id: consumer.id, pickUp: consumer.pickUp }));
  const steps = [
    `check that the current version ${current?.version ?? '(none)'} works (${policy.kind === 'postgresAdminPassword' ? 'a real login' : policy.kind === 'storageAccountKey' ? 'a real storage request' : 'readable'})`,
    policy.kind === 'storageAccountKey'
      ? `regenerate ${nextCredentialId ?? 'key2'} of ${parseResourceId(policy.storageAccount).name} (the key not in use) and store it as a new version tagged pending, CredentialId=${nextCredentialId ?? 'key2'}, expiring in ${policy.validityDays} days`
      : `generate a new ${policy.kind === 'random' ? `${policy.length}-character ${policy.alphabet} secret` : `${policy.length}-character password`} and store it first, as a new version tagged pending, expiring in ${policy.validityDays} days`,
    ...(policy.kind === 'postgresAdminPassword' ? [`reset the admin password of ${parseResourceId(policy.server).name} through ARM (long-running PATCH)`] : []),
    `verify the new version for real${policy.kind === 'postgresAdminPassword' ? ' (log in with it)' : policy.kind === 'storageAccountKey' ? ' (authenticate with it)' : ''}; on failure put the previous credential back, mark the new version failed and disabled, escalate`,
    'mark the new version active',
    ...policy.derived.map((derived) => `write a new version of the derived secret ${derived.secret}`),
    ...consumers.map((consumer) => `${consumer.pickUp} ${consumer.id} so it picks the new version up, then verify its health`),
    `after ${policy.graceHours} h, disable the previous version`,
  ];
  return {
    vault,
    vaultId,
    secret: policy.secret,
    kind: policy.kind,
    ...(current === undefined ? {} : { current }),
    currentWorks,
    currentDetail,
    stale,
    due,
    dueDetail,
    ...(nextCredentialId === undefined ? {} : { nextCredentialId }),
    consumers,
    derived: policy.derived.map((derived) => derived.secret),
    verify: policy.verify,
    graceHours: policy.graceHours,
    validityDays: policy.validityDays,
    ...(resourceId === undefined ? {} : { resourceId }),
    steps,
  };
}

/** Input of the lock step. */
export interface LockStepInput {
  readonly vault: string;
  readonly secret: string;
  readonly owner: string;
  readonly action: 'acquire' | 'release';
  readonly now: string;
  /** On release: how the rotation ended (no secrets). */
  readonly outcome?: string;
}

/**
 * The per-secret lock: a row of the `rotations` state table (partition = vault, row = secret),
 * written conditionally on its ETag, so two rotations of one secret never both hold it. The same
 * owner re-enters it (a retried activity); a hold older than 6 hours is taken over. Without a
 * state store there is nowhere shared to lock, and the rotation refuses to run.
 */
export async function lockStep(ctx: RunbookContext, input: LockStepInput): Promise<{ readonly held: boolean; readonly holder?: string }> {
  if (!hasStateStore(ctx.config)) throw new RotationStepError('the per-secret rotation lock needs a state store (state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId); none is configured, so nothing was rotated');
  const table = createStateTables(ctx.config, ctx.clients).table(STATE_TABLES.rotations);
  const partition = stateKey(input.vault.toLowerCase());
  const row = stateKey(input.secret.toLowerCase());
  const now = new Date(input.now);
  let holder: string | undefined;
  const result = await table.update(partition, row, (current): StateEntity | undefined => {
    const owner = typeof current?.owner === 'string' ? current.owner : '';
    const holding = current?.holding === true;
    const since = typeof current?.since === 'string' ? new Date(current.since).getTime() : 0;
    if (input.action === 'acquire') {
      if (holding && owner !== input.owner && now.getTime() - since < LOCK_MAX_HOLD_MS) {
        holder = owner;
        return undefined;
      }
      return { owner: input.owner, holding: true, since: now.toISOString(), vault: input.vault, secretName: input.secret, lastOutcome: '' };
    }
    if (owner !== input.owner) return undefined;
    return { owner: input.owner, holding: false, since: now.toISOString(), vault: input.vault, secretName: input.secret, lastOutcome: (input.outcome ?? '').slice(0, 500) };
  });
  if (input.action === 'acquire' && holder !== undefined) {
    throw new RotationLockHeldError(`${input.vault}/${input.secret}: another rotation (${holder}) holds the secret's lock; nothing was changed`, { context: { vault: input.vault, secret: input.secret, holder } });
  }
  return { held: input.action === 'acquire' ? result.row?.value.owner === input.owner : false };
}

/** Input of the store step. */
export interface StoreStepInput {
  readonly plan: RotationPlan;
  readonly owner: string;
  readonly now: string;
}

/**
 * Stores the new credential first, as a new version tagged pending (with its expiry, the version
 * it replaces and, for a storage key, the flipped CredentialId). Idempotent: a version this owner
 * wrote already is returned instead. A storage key is regenerated first (its value comes from
 * Azure), the key not in use, so the key consumers hold keeps working throughout.
 */
export async function storeStep(ctx: RunbookContext, input: StoreStepInput): Promise<SecretRef> {
  const { plan } = input;
  const { policy } = rotationPolicyOf(ctx.config, plan.vault, plan.secret);
  const client = await secretClient(ctx, plan.vault);
  const existing = await findTagged(client, plan.vault, plan.secret, { [T.owner]: input.owner, [T.state]: 'pending' });
  const written = existing ?? (await findTagged(client, plan.vault, plan.secret, { [T.owner]: input.owner }));
  if (written?.version !== undefined && written.tags?.[T.reinstates] === undefined) return { vault: plan.vault, name: plan.secret, version: written.version };
  const expiresOn = new Date(new Date(input.now).getTime() + plan.validityDays * 86_400_000);
  const tags: Record<string, string> = { [T.owner]: input.owner, [T.state]: 'pending', ...(plan.current === undefined ? {} : { [T.previous]: plan.current.version }) };
  let value: string;
  if (policy.kind === 'random') value = generateSecret(policy.length, policy.alphabet);
  else if (policy.kind === 'postgresAdminPassword') value = generatePassword(policy.length);
  else {
    const keyName = plan.nextCredentialId ?? 'key2';
    const id = parseResourceId(policy.storageAccount);
    const storage = await ctx.clients.storageClient(id.subscriptionId);
    const keys = await callAzure({ resourceId: policy.storageAccount, operation: 'regenerate key' }, () => storage.storageAccounts.regenerateKey(id.resourceGroup, id.name, { keyName }));
    const regenerated = keys.keys?.find((key) => key.keyName?.toLowerCase() === keyName)?.value;
    if (regenerated === undefined) throw new RotationStepError(`${policy.storageAccount}: expected regenerateKey to answer the new ${keyName}, found none`);
    value = regenerated;
    tags[T.credentialId] = keyName;
  }
  return setVersion(ctx, plan.vault, plan.secret, value, { tags, expiresOn, contentType: 'text/plain' });
}

/** Input of the reset step: the version whose value the server's admin password becomes. */
export interface ResetStepInput {
  readonly plan: RotationPlan;
  readonly ref: SecretRef;
}

/**
 * Resets the PostgreSQL server's admin password to the value of `ref` through ARM (a long-running
 * PATCH, awaited through the SDK poller within 10 minutes). Idempotent: the same value again.
 * Nothing to do for other kinds.
 */
export async function resetStep(ctx: RunbookContext, input: ResetStepInput): Promise<{ readonly applied: boolean }> {
  if (input.plan.kind !== 'postgresAdminPassword') return { applied: false };
  const id = serverOf(input.plan);
  const value = await readValue(ctx, input.ref);
  const pg = await ctx.clients.postgresClient(id.subscriptionId);
  const abort = new AbortController();
  const timer = setTimeout(() => {
    abort.abort();
  }, RESET_DEADLINE_MS);
  try {
    await untilReady(pg, id, abort.signal);
    const poller = await pg.servers.beginUpdate(id.resourceGroup, id.name, { administratorLoginPassword: value }, { abortSignal: abort.signal, updateIntervalInMs: 2_000 });
    await poller.pollUntilDone({ abortSignal: abort.signal });
  } catch (error) {
    throw new RotationStepError(`reset of the admin password of ${id.name} to version ${input.ref.version} failed: ${safeMessage(error, value)}`, { context: { server: input.plan.resourceId } });
  } finally {
    clearTimeout(timer);
  }
  return { applied: true };
}

/** Server states that end by themselves; Azure refuses an update until the server is Ready again. */
const TRANSITIONAL_STATES = new Set(['updating', 'starting', 'restarting', 'provisioning']);

/**
 * Waits (every 2 s, within the reset's deadline) until the server is Ready: Azure refuses an
 * update of a server in any other state, and a reset retried after a crash finds the crashed
 * attempt's PATCH still running ("Updating"). A state that does not end by itself (Stopped,
 * Disabled) fails the step with what was found.
 */
async function untilReady(pg: Awaited<ReturnType<AzureClients['postgresClient']>>, id: ReturnType<typeof parseResourceId>, signal: AbortSignal): Promise<void> {
  const serverId = `/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/Microsoft.DBforPostgreSQL/flexibleServers/${id.name}`;
  for (;;) {
    const server = await callAzure({ resourceId: serverId, operation: 'get PostgreSQL flexible server' }, () => pg.servers.get(id.resourceGroup, id.name, { abortSignal: signal }));
    const state = server.state ?? 'Ready';
    if (state.toLowerCase() === 'ready') return;
    if (!TRANSITIONAL_STATES.has(state.toLowerCase())) throw new RotationStepError(`${id.name}: expected the server to be Ready for a password reset, found ${state}`, { context: { server: serverId } });
    await delay(2_000, { abortSignal: signal, abortErrorMsg: `${id.name}: still ${state} when the reset's deadline passed` });
  }
}

/** Input of the verify step. */
export interface VerifyStepInput {
  readonly plan: RotationPlan;
  readonly ref: SecretRef;
}

/** Whether the credential of `ref` works, for real (see {@link credentialWorks}). Never throws for a credential that fails. */
export async function verifyStep(ctx: RunbookContext, input: VerifyStepInput): Promise<{ readonly works: boolean; readonly detail: string }> {
  const { policy } = rotationPolicyOf(ctx.config, input.plan.vault, input.plan.secret);
  return credentialWorks(ctx, policy, input.ref);
}

/** Input of the mark step. */
export interface MarkStepInput {
  readonly ref: SecretRef;
  readonly state: 'active' | 'failed';
  /** Disable the version (a failed one is never left enabled). */
  readonly disable: boolean;
}

/** Sets the version's state tag (keeping its other tags) and, when asked, disables it. Idempotent. */
export async function markStep(ctx: RunbookContext, input: MarkStepInput): Promise<{ readonly state: string; readonly enabled: boolean }> {
  const client = await secretClient(ctx, input.ref.vault);
  const properties = (await versions(client, input.ref.vault, input.ref.name)).find((candidate) => candidate.version === input.ref.version);
  if (properties === undefined) throw new RotationStepError(`${input.ref.vault}/${input.ref.name}/${input.ref.version}: expected the version to exist, found none`);
  const tags = { ...(properties.tags ?? {}), [T.state]: input.state };
  const enabled = input.disable ? false : properties.enabled !== false;
  await callAzure({ resourceId: `${input.ref.vault}/secrets/${input.ref.name}/${input.ref.version}`, operation: 'update secret properties' }, () =>
    client.updateSecretProperties(input.ref.name, input.ref.version, { tags, enabled }),
  );
  return { state: input.state, enabled };
}

/** Input of the reinstate step. */
export interface ReinstateStepInput {
  readonly plan: RotationPlan;
  readonly previous: SecretRef;
  readonly owner: string;
  readonly now: string;
}

/**
 * After a failed rotation: the failed version is the latest and disabled, so a reference without
 * a version would no longer resolve. Copies the previous value into a new latest version
 * (tagged active, `reinstates` the previous version, with its CredentialId), once per owner.
 */
export async function reinstateStep(ctx: RunbookContext, input: ReinstateStepInput): Promise<SecretRef> {
  const client = await secretClient(ctx, input.previous.vault);
  const existing = await findTagged(client, input.previous.vault, input.previous.name, { [T.owner]: input.owner, [T.reinstates]: input.previous.version });
  if (existing?.version !== undefined) return { vault: input.previous.vault, name: input.previous.name, version: existing.version };
  const previous = (await versions(client, input.previous.vault, input.previous.name)).find((candidate) => candidate.version === input.previous.version);
  const value = await readValue(ctx, input.previous);
  const tags: Record<string, string> = { [T.owner]: input.owner, [T.state]: 'active', [T.reinstates]: input.previous.version };
  const credentialId = previous?.tags?.[T.credentialId];
  if (credentialId !== undefined) tags[T.credentialId] = credentialId;
  return setVersion(ctx, input.previous.vault, input.previous.name, value, {
    tags,
    ...(previous?.expiresOn === undefined ? {} : { expiresOn: previous.expiresOn }),
    contentType: previous?.contentType ?? 'text/plain',
  });
}

/** Input of the derived step. */
export interface DerivedStepInput {
  readonly plan: RotationPlan;
  /** The version of the rotated secret the derived secrets are built from. */
  readonly source: SecretRef;
  readonly owner: string;
}

/**
 * Writes a new version of each derived secret from its template and the source version's value
 * (for a PostgreSQL password: login, FQDN and database from ARM and the policy), tagged with the
 * owner and source version: a re-run finds them. Returns the references.
 */
export async function derivedStep(ctx: RunbookContext, input: DerivedStepInput): Promise<SecretRef[]> {
  const { policy } = rotationPolicyOf(ctx.config, input.plan.vault, input.plan.secret);
  if (policy.derived.length === 0) return [];
  const client = await secretClient(ctx, input.plan.vault);
  const value = await readValue(ctx, input.source);
  const fields: Record<string, string> = { value };
  if (policy.kind === 'postgresAdminPassword') {
    const id = parseResourceId(policy.server);
    const pg = await ctx.clients.postgresClient(id.subscriptionId);
    const server = await callAzure({ resourceId: policy.server, operation: 'get server' }, () => pg.servers.get(id.resourceGroup, id.name));
    Object.assign(fields, {
      password: encodeURIComponent(value),
      login: encodeURIComponent(server.administratorLogin ?? ''),
      host: server.fullyQualifiedDomainName ?? `${id.name}.postgres.database.azure.com`,
      database: encodeURIComponent(policy.database),
    });
  }
  const refs: SecretRef[] = [];
  for (const derived of policy.derived) {
    const existing = await findTagged(client, input.plan.vault, derived.secret, { [T.owner]: input.owner, [T.source]: input.source.version });
    if (existing?.version !== undefined) {
      refs.push({ vault: input.plan.vault, name: derived.secret, version: existing.version });
      continue;
    }
    const template = derived.format === 'postgresql-url' ? 'postgresql://{login}:{password}@{host}:5432/{database}?sslmode=require' : derived.format === 'value' ? '{value}' : (derived.template ?? '{value}');
    const rendered = template.replace(/\{(value|password|login|host|database)\}/g, (_match, field: string) => fields[field] ?? '');
    refs.push(await setVersion(ctx, input.plan.vault, derived.secret, rendered, { tags: { [T.owner]: input.owner, [T.source]: input.source.version, [T.state]: 'active' }, contentType: 'text/plain' }));
  }
  return refs;
}

/** Input of the pick-up step. */
export interface PickUpStepInput {
  readonly consumerId: string;
  readonly pickUp: 'restart' | 'refresh';
}

/**
 * Makes a consumer fetch its Key Vault references again: a restart (the app resolves them as it
 * starts) or App Service's references refresh. Repeating it is harmless.
 */
export async function pickUpStep(ctx: RunbookContext, input: PickUpStepInput): Promise<{ readonly consumerId: string; readonly action: string }> {
  const id = parseResourceId(input.consumerId);
  const web = await ctx.clients.webClient(id.subscriptionId);
  if (input.pickUp === 'restart') {
    await callAzure({ resourceId: input.consumerId, operation: 'restart web app' }, () => web.webApps.restart(id.resourceGroup, id.name));
  } else {
    await refreshReferences(ctx.clients, input.consumerId);
  }
  return { consumerId: input.consumerId, action: input.pickUp };
}

/** `POST {site}/config/configreferences/appsettings/refresh`: not in the SDK, sent through its pipeline. */
async function refreshReferences(clients: AzureClients, siteId: string): Promise<void> {
  const id = parseResourceId(siteId);
  const web = await clients.webClient(id.subscriptionId);
  const { createDefaultHttpClient, createPipelineRequest } = await import('@azure/core-rest-pipeline');
  const base = clients.endpoints.resourceManager.replace(/\/+$/, '');
  const request = createPipelineRequest({ url: `${base}${siteId}/config/configreferences/appsettings/refresh?api-version=2024-11-01`, method: 'POST' });
  const response = await callAzure({ resourceId: siteId, operation: 'refresh Key Vault references' }, () => web.pipeline.sendRequest(createDefaultHttpClient(), request));
  if (response.status >= 300) throw toAzureError(new RotationStepError(`refresh of the Key Vault references of ${siteId}: expected 200, found ${response.status}`), { resourceId: siteId, operation: 'refresh Key Vault references' });
}

/** Input of the disable step. */
export interface DisableStepInput {
  readonly ref: SecretRef;
}

/** Disables a previous version once its grace period is over (idempotent; a missing version is done). */
export async function disableStep(ctx: RunbookContext, input: DisableStepInput): Promise<{ readonly disabled: boolean }> {
  const client = await secretClient(ctx, input.ref.vault);
  const properties = (await versions(client, input.ref.vault, input.ref.name)).find((candidate) => candidate.version === input.ref.version);
  if (properties === undefined || properties.enabled === false) return { disabled: properties !== undefined };
  await callAzure({ resourceId: `${input.ref.vault}/secrets/${input.ref.name}/${input.ref.version}`, operation: 'update secret properties' }, () =>
    client.updateSecretProperties(input.ref.name, input.ref.version, { enabled: false, tags: { ...(properties.tags ?? {}), [T.state]: 'retired' } }),
  );
  return { disabled: true };
}

/** Input of the due step (the daily timer). */
export interface DueStepInput {
  readonly now: string;
}

/** The secrets whose policy says they are due now, each with its current version (for an idempotent instance id). */
export async function dueStep(ctx: RunbookContext, input: DueStepInput): Promise<{ readonly vault: string; readonly secret: string; readonly version: string; readonly detail: string }[]> {
  const due: { vault: string; secret: string; version: string; detail: string }[] = [];
  for (const { vault, secret } of rotatedSecrets(ctx.config)) {
    try {
      const plan = await planStep(ctx, { vault, secret, now: input.now });
      if (plan.due) due.push({ vault, secret, version: plan.current?.version ?? 'none', detail: plan.dueDetail });
    } catch (error) {
      ctx.logger.log('warn', { event: 'rotation.due.failed', vault, secret, error: errorMessage(error) });
    }
  }
  return due;
}

/** One step of a rotation, as the record keeps it. */
export interface RotationStepRecord {
  readonly at: string;
  readonly step: string;
  readonly outcome: 'planned' | 'applied' | 'skipped' | 'failed';
  readonly message: string;
}

/** Input of the finish step. */
export interface RotationFinishInput {
  readonly runId: string;
  readonly trigger: RunTrigger;
  readonly requestedBy?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly vaultId: string;
  readonly secret: string;
  readonly outcome: string;
  readonly succeeded: boolean;
  /** Escalate (a page when PagerDuty is configured): a rotation that failed after storing. */
  readonly escalate: boolean;
  readonly steps: readonly RotationStepRecord[];
}

/** Writes the run record (once) and sends the notifications it calls for. */
export async function finishStep(ctx: RunbookContext, input: RotationFinishInput): Promise<{ readonly record: string; readonly notifications: number }> {
  let clock = new Date(input.startedAt);
  const run = startRun({ runbook: 'rotation', trigger: input.trigger, dryRun: false, estate: ctx.config.estate, runId: input.runId, correlationId: input.runId, now: () => clock, ...(input.requestedBy === undefined ? {} : { requestedBy: input.requestedBy }) });
  const target = run.target(input.vaultId, 'keyVault');
  for (const step of input.steps) target.action({ action: step.step, outcome: step.outcome, message: `${step.at}: ${step.message}`, resource: `${parseResourceId(input.vaultId).name}/secrets/${input.secret}` });
  target.finding({ code: 'rotation.outcome', severity: input.succeeded ? 'ok' : 'fail', message: input.outcome });
  if (!input.succeeded) target.fail(new Error(input.outcome), 'rotation');
  clock = new Date(input.endedAt);
  const record: RunRecord = run.finish({ notes: [`outcome: ${input.outcome}`, ...(input.escalate ? ['escalated: a person must look at this rotation'] : [])] });
  let location = 'not stored (no runRecords configured)';
  if (ctx.config.runRecords.blobServiceUrl !== undefined || ctx.config.runRecords.storageAccountId !== undefined) {
    const store = await createRunRecordStore(ctx.config, ctx.clients);
    try {
      location = (await store.write(record)).url;
    } catch (error) {
      if (!(error instanceof ResourceConflictError)) throw error;
      return { record: `${store.location} (already written)`, notifications: 0 };
    }
  }
  ctx.logger.log(input.succeeded ? 'info' : 'warn', { event: 'rotation.finished', runId: input.runId, outcome: input.outcome, secret: input.secret });
  const sent = await sendRunNotifications(ctx.config, record, { agent: await ctx.clients.agent() });
  return { record: location, notifications: sent.length };
}
