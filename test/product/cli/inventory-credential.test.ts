/**
 * `inventory` with a credential that cannot get any token: the sandbox credential's token
 * endpoint is a loopback port where nothing listens (every endpoint is loopback, so nothing
 * leaves the machine). The command reports the credential failure once, with the target count,
 * in one line naming the credential kind and the scope, instead of once per target.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../../support/cli.ts';

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
  appHostUrlTemplate: ${base}/_hosts/{host}
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
