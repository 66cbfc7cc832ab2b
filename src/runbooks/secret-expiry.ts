/**
 * The `secret-expiry` runbook: which secrets of a Key Vault have expired, expire soon, or have
 * no expiry where the policy requires one. It changes nothing and never reads a secret value:
 * it lists secret properties (latest versions) through the data plane and nothing else.
 *
 * One check per enabled secret (sorted by name), `resource` = `<vault>/secrets/<name>`:
 * | code | ok | warn | fail |
 * |---|---|---|---|
 * | `secret.expiry` | expires after now + `warnWithinDays` | expires within `warnWithinDays` | expired (expiry ≤ now) |
 * | `certificate.expiry` | as above, for certificate-backed secrets (`managed` or a certificate key ID) | | |
 * | `secret.no-expiry` | no expiry and `requireExpiry` false | no expiry and `requireExpiry` true | – |
 *
 * A missing expiry is a warning, not a failure: nothing stops working because of it, and `fail`
 * is kept for what is broken now (an expired secret is refused by every consumer that checks).
 * Disabled secrets are not checked: they are listed as kept items with the reason, since no
 * application can read them and their expiry does not matter until someone enables them.
 */
import type { z } from 'zod';
import type { SecretProperties } from '@azure/keyvault-secrets';
import { parseResourceId } from '../azure/resource-id.ts';
import { callAzure } from '../azure/errors.ts';
import type { secretExpiryPolicySchema } from '../config/schema.ts';
import { ChecksOnlyApplyError, DAY_MS, formatDays, formatInstant, UnsupportedTargetKindError } from './checks-only.ts';
import { collect } from '../util/collect.ts';
import type { Check, KeptItem, Runbook, TargetPlan } from './runbook.ts';
import { readVaultResource } from './shared/target-resource.ts';

/** The `secret-expiry` policy of a Key Vault target. */
export type SecretExpiryPolicy = z.output<typeof secretExpiryPolicySchema>;

/** The check codes of `secret-expiry`, stable for alert routing and dashboards. */
export const SECRET_EXPIRY_CODES = {
  secretExpiry: 'secret.expiry',
  certificateExpiry: 'certificate.expiry',
  noExpiry: 'secret.no-expiry',
} as const;

/** The properties `secret-expiry` reads of a secret: never its value. */
export type SecretExpiryFacts = Pick<SecretProperties, 'name' | 'enabled' | 'expiresOn' | 'managed' | 'certificateKeyId'>;

/**
 * Checks and kept items for the latest versions of a vault's secrets. Pure, so the thresholds
 * can be reasoned about without the network.
 */
export function secretExpiryChecks(
  vaultName: string,
  secrets: readonly SecretExpiryFacts[],
  policy: SecretExpiryPolicy,
  now: Date,
): { checks: Check[]; kept: KeptItem[] } {
  const checks: Check[] = [];
  const kept: KeptItem[] = [];
  const warnFrom = new Date(now.getTime() + policy.warnWithinDays * DAY_MS);
  for (const secret of [...secrets].sort((a, b) => a.name.localeCompare(b.name))) {
    const resource = `${vaultName}/secrets/${secret.name}`;
    if (secret.enabled === false) {
      kept.push({ resource, reason: 'disabled: no application can read it, so its expiry is not checked' });
      continue;
    }
    const certificate = secret.managed === true || secret.certificateKeyId !== undefined;
    const what = certificate ? `certificate-backed secret ${secret.name}` : `secret ${secret.name}`;
    const expires = secret.expiresOn;
    if (expires === undefined) {
      checks.push({
        status: policy.requireExpiry ? 'warn' : 'ok',
        code: SECRET_EXPIRY_CODES.noExpiry,
        message: policy.requireExpiry ? `${vaultName}: ${what} has no expiry date, which the policy requires` : `${vaultName}: ${what} has no expiry date (not required)`,
        expected: policy.requireExpiry ? 'an expiry date (requireExpiry)' : 'an expiry date is optional',
        found: 'no expiry date',
        resource,
      });
      continue;
    }
    const remainingMs = expires.getTime() - now.getTime();
    const code = certificate ? SECRET_EXPIRY_CODES.certificateExpiry : SECRET_EXPIRY_CODES.secretExpiry;
    const expected = `expiry after ${formatInstant(warnFrom)} (more than ${String(policy.warnWithinDays)} days away)`;
    if (remainingMs <= 0) {
      checks.push({
        status: 'fail',
        code,
        message: `${vaultName}: ${what} expired ${formatDays(-remainingMs)} ago`,
        expected,
        found: `expired ${formatInstant(expires)} (${formatDays(-remainingMs)} ago)`,
        resource,
      });
    } else {
      checks.push({
        status: expires.getTime() <= warnFrom.getTime() ? 'warn' : 'ok',
        code,
        message: `${vaultName}: ${what} expires in ${formatDays(remainingMs)}`,
        expected,
        found: `expires ${formatInstant(expires)} (in ${formatDays(remainingMs)})`,
        resource,
      });
    }
  }
  return { checks, kept };
}

/**
 * `secret-expiry`: read-only report of expired, soon-expiring and expiry-less secrets and
 * certificate-backed secrets of each configured Key Vault.
 *
 * `plan` reads the vault from ARM at the configured ID (the data plane is reached by name, so a
 * wrong subscription or resource group must fail, not report another vault), then lists secret
 * properties only (one paged GET of `/secrets`, no value is read) and
 * returns checks, never actions; `apply` always throws {@link ChecksOnlyApplyError}. A vault
 * that cannot be read fails with a typed `AzureOperationError` naming it.
 */
export const secretExpiryRunbook: Runbook<SecretExpiryPolicy> = {
  name: 'secret-expiry',
  description: 'Report Key Vault secrets and certificate-backed secrets that expired, expire soon, or lack a required expiry',
  policyOf(target) {
    return target.runbooks['secret-expiry'];
  },
  async plan(context, target, policy): Promise<TargetPlan> {
    const id = parseResourceId(target.id);
    if (id.kind !== 'keyVault') {
      throw new UnsupportedTargetKindError('secret-expiry', target.id, ['keyVault'], id.kind ?? id.type);
    }
    // The vault from ARM at the configured ID first: the data plane is reached by vault name only.
    await readVaultResource(context.clients, id.id, context.config.azure.cloud);
    const client = await context.clients.secretClient(id.name);
    const properties = await callAzure({ resourceId: `${id.id}/secrets`, operation: 'list secret properties' }, () =>
      collect(client.listPropertiesOfSecrets()),
    );
    const { checks, kept } = secretExpiryChecks(id.name, properties, policy, context.now());
    return { targetId: id.id, kind: id.kind, actions: [], checks, kept };
  },
  apply(_context, target, _policy, action) {
    return Promise.reject(new ChecksOnlyApplyError('secret-expiry', target, action));
  },
};
