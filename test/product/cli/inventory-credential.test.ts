/**
 * `inventory` with a credential that cannot get any token: the sandbox credential's token
 * endpoint is a loopback port where nothing listens (every endpoint is loopback, so nothing
 * leaves the machine). The command reports the credential failure once, with the target count,
 * in one line naming the credential kind and the scope, instead of once per target. Without the
 * sandbox credential, the local credential chain and the managed identity fail in words: which
 * credentials were tried and what to do (`az login`, the managed identity client id setting),
 * never the SDK's class names.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, runProcess } from '../../support/cli.ts';

const SUB = '/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers';

/** A loopback port that was free a moment ago and has nothing listening now. */
async function deadLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => {
      if (error === undefined) resolve();
      else reject(error);
    }));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return address.port;
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('inventory when the credential cannot get a token', () => {
  it('prints the credential failure once with the count, not once per target, and exits 1', async () => {
    const port = await deadLoopbackPort();
    const base = `https://127.0.0.1:${String(port)}`;
    const dir = await mkdtemp(path.join(tmpdir(), 'inventory-credential-'));
    dirs.push(dir);
    const file = path.join(dir, 'dead-credential.yaml');
    await writeFile(
      file,
      `version: 1
estate: dead-credential
azure:
  resourceManagerEndpoint: ${base}
  keyVaultUrlTemplate: ${base}/vaults/{name}
  containerRegistryUrlTemplate: ${base}/registries/{name}
  blobUrlTemplate: ${base}/{name}
  tableUrlTemplate: ${base}/{name}
  appHostUrlTemplate: ${base}/_hosts/{host}
  postgresUrlTemplate: postgresql://127.0.0.1:${String(port)}
  keyVaultChallengeResourceVerification: false
  sandboxTokenEndpoint: ${base}/72f988bf-0000-4000-8000-00000000a001/oauth2/v2.0/token
targets:
  - id: ${SUB}/Microsoft.App/containerApps/ca-user-service
  - id: ${SUB}/Microsoft.App/containerApps/ca-auth-service
  - id: ${SUB}/Microsoft.KeyVault/vaults/kv-xshopai-prod
  - id: ${SUB}/Microsoft.DBforPostgreSQL/flexibleServers/psql-xshopai-prod
`,
    );
    const run = await cli(['inventory', '--config', file, '--no-record']);
    expect(run.code).toBe(1);
    const errors = run.stderr.split('\n').filter((line) => line.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      new RegExp(
        `^error: all 4 target\\(s\\) failed with the same credential error: expected a token from sandbox credential for scope "[^"]+", found connect ECONNREFUSED 127\\.0\\.0\\.1:${String(port)} from ${base.replaceAll('.', '\\.')}/`,
      ),
    );
    expect(run.stdout).toContain('Could not read any of the 4 target(s): expected a token from sandbox credential');
    expect(run.stdout.match(/expected a token/g)).toHaveLength(1);
    expect(run.stdout).not.toContain('ca-auth-service');
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/^\s+at /m);
  }, 60_000);
});

/** An estate config whose every endpoint is a dead loopback port; `extra` goes under `azure:`. */
async function deadEstate(name: string, base: string, extra: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'inventory-credential-'));
  dirs.push(dir);
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(
    file,
    `version: 1
estate: ${name}
azure:
  resourceManagerEndpoint: ${base}
  authorityHost: ${base}
  keyVaultUrlTemplate: ${base}/vaults/{name}
  containerRegistryUrlTemplate: ${base}/registries/{name}
  blobUrlTemplate: ${base}/{name}
  appHostUrlTemplate: ${base}/_hosts/{host}
${extra}targets:
  - id: ${SUB}/Microsoft.App/containerApps/ca-user-service
  - id: ${SUB}/Microsoft.KeyVault/vaults/kv-xshopai-prod
`,
  );
  return file;
}

/**
 * The environment of a machine with no way to sign in: no AZURE_* variables, no az, pwsh or azd
 * on the PATH, and the managed identity endpoints (IMDS, App Service) on dead loopback ports, so
 * nothing leaves the machine.
 */
async function noSignInEnv(port: number, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  const empty = await mkdtemp(path.join(tmpdir(), 'no-tools-'));
  dirs.push(empty);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(AZURE_|IDENTITY_|MSI_|WEBSITE_|IMDS_)/.test(key)) env[key] = value;
  }
  return { ...env, PATH: empty, HOME: empty, AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${String(port)}`, ...extra };
}

describe('credential failures in words', () => {
  it('the local credential chain: names each credential tried, what became of it, and says az login', async () => {
    const port = await deadLoopbackPort();
    const file = await deadEstate('no-sign-in', `https://127.0.0.1:${String(port)}`, '');
    const run = await runProcess(process.execPath, ['bin/ops-autopilot.mjs', 'inventory', '--config', file], { env: await noSignInEnv(port), timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    const errors = run.stderr.split('\n').filter((line) => line.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: all 2 target\(s\) failed with the same credential error: expected a token from the local credentials \(environment, managed identity, Azure CLI, \.\.\.\) for scope "[^"]+", found no token from any: tried /);
    for (const tried of ['service principal in environment variables (not set)', 'managed identity (no managed identity endpoint answered)', 'Azure CLI (not installed)', 'Azure PowerShell (not installed)', 'Azure Developer CLI (azd) (not installed)']) {
      expect(errors[0]).toContain(tried);
    }
    expect(errors[0]).toContain('to fix: sign in with `az login`');
    expect(errors[0]).toContain('azure.managedIdentityClientId');
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/[A-Z]\w+Credential\b|AggregateAuthenticationError|CredentialUnavailableError|aka\.ms/);
  }, 60_000);

  it('the managed identity in Azure: says to set the client id of a user-assigned identity', async () => {
    const port = await deadLoopbackPort();
    const file = await deadEstate('managed', `https://127.0.0.1:${String(port)}`, '  managedIdentityClientId: 0b0c0d0e-1111-4222-8333-444455556666\n');
    const env = await noSignInEnv(port, { IDENTITY_ENDPOINT: `http://127.0.0.1:${String(port)}/msi/token`, IDENTITY_HEADER: 'sandbox-header', WEBSITE_INSTANCE_ID: 'local' });
    const run = await runProcess(process.execPath, ['bin/ops-autopilot.mjs', 'inventory', '--config', file], { env, timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    const errors = run.stderr.split('\n').filter((line) => line.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: all 2 target\(s\) failed with the same credential error: expected a token from managed identity for scope "[^"]+", found .*; to fix: give the app a managed identity with access to the resource; for a user-assigned identity set its client id in azure\.managedIdentityClientId \(estate config\) or the AZURE_CLIENT_ID app setting$/);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/[A-Z]\w+Credential\b|AggregateAuthenticationError|CredentialUnavailableError|aka\.ms/);
  }, 60_000);
});
