/**
 * `run` when the run lock cannot be taken because the run-record store is unreachable: the CLI
 * says so (which store, why, nothing planned or applied), exits 1, and does not claim that no
 * target opts into the runbook. It exits once it has said so: the SDK's request timer once held
 * the process open for a minute after a refused connection (hence the 30 s bound).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { cli } from '../../support/cli.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox } from '../../support/sandbox.ts';

const SUB = '9d9e8f17-2b3c-4d4e-8f50-6b7c8d9e0a09';
const WORLD = `name: lock-store
description: one registry; the test points runRecords at a loopback port nobody listens on.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
resources:
  - type: Microsoft.ContainerRegistry/registries
    resourceGroup: rg-lock
    name: crlockstore
    location: eastus
    spec:
      repositories:
        - name: app
          tags: [{ name: v1, createdDaysAgo: 100 }, { name: v2, createdDaysAgo: 90 }]
`;

const sandbox = useSandbox({ worlds: [writeWorldFile('lock-store', WORLD)], postgres: false, azurite: false });

/** A loopback port that was free a moment ago and has no listener now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => {
    resolve();
  }));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return address.port;
}

describe('run with an unreachable run-record store', () => {
  it('says the lock could not be taken because the store is unreachable, and exits 1 with nothing applied', { timeout: 30_000 }, async () => {
    const generated = sandbox().worlds[0]?.configFile;
    if (generated === undefined) throw new Error('world not loaded');
    const document = parseDocument(readFileSync(generated, 'utf8'));
    const store = `https://127.0.0.1:${String(await closedPort())}/stunreachable`;
    document.setIn(['runRecords', 'blobServiceUrl'], store);
    document.setIn(['targets', 0, 'runbooks'], { 'image-purge': { keep: 1, olderThanDays: 0 } });
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'cli-lock-store-')), 'estate.yaml');
    writeFileSync(file, document.toString());
    await sandbox().clearRequests();

    const run = await cli(['run', 'image-purge', '--config', file, '--yes']);
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('no targets opt into this runbook');
    expect(run.stdout).toContain(`the run lock could not be taken: expected the run-record store ${store} (runRecords.blobServiceUrl) to be reachable, found it unreachable`);
    expect(run.stdout).toContain('nothing was planned or applied');
    expect(run.stdout).toMatch(/^image-purge on lock-store: failed; .*; the run lock could not be taken/m);
    // Nothing was planned: no registry or ARM request at all.
    expect((await sandbox().requests()).filter((entry) => entry.host === 'acr' || entry.host === 'arm')).toEqual([]);
  });
});
