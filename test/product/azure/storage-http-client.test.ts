/**
 * storage-blob over the budgeted HTTP client, with a scripted inner HttpClient (no network):
 * every request of the service client and of the clients derived from it (container, blob)
 * goes through the one budget exactly once, storage's own retries draw on it too, a 503 Server
 * Busy counts as throttling, and responses reach storage-blob's deserializer intact (listing
 * parses the XML body).
 */
import { AnonymousCredential, BlobServiceClient } from '@azure/storage-blob';
import { createHttpHeaders, type HttpClient, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { requestBudgetSchema } from '../../../src/config/schema.ts';
import { BudgetRegistry } from '../../../src/azure/request-budget.ts';
import { storageHttpClient } from '../../../src/azure/storage-http-client.ts';
import { storageAccountOfBlobUrl } from '../../../src/azure/clients.ts';

const LIST_XML = `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://127.0.0.1:9/stscripted" ContainerName="records"><Blobs><Blob><Name>a.json</Name><Properties><Content-Length>2</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob><Blob><Name>b.json</Name><Properties><Content-Length>2</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob></Blobs><NextMarker /></EnumerationResults>`;

describe('storage-blob through the budgeted HttpClient', () => {
  it('counts each request of every derived client once, retries included, and parses responses', async () => {
    const seen: { method: string; path: string; agent: boolean }[] = [];
    let busy = 1;
    const inner: HttpClient = {
      sendRequest: (request: PipelineRequest): Promise<PipelineResponse> => {
        const url = new URL(request.url);
        seen.push({ method: request.method, path: url.pathname, agent: request.agent !== undefined });
        const headers = createHttpHeaders({ 'x-ms-request-id': `r${String(seen.length)}`, 'x-ms-version': '2025-11-05' });
        if (request.method === 'PUT' && url.searchParams.get('restype') === 'container' && busy > 0) {
          busy -= 1;
          headers.set('retry-after', '0');
          headers.set('x-ms-error-code', 'ServerBusy');
          return Promise.resolve({ request, status: 503, headers, bodyAsText: '' });
        }
        if (request.method === 'GET' && url.searchParams.get('comp') === 'list') {
          headers.set('content-type', 'application/xml');
          return Promise.resolve({ request, status: 200, headers, bodyAsText: LIST_XML });
        }
        headers.set('etag', '"0x1"');
        headers.set('last-modified', new Date(0).toUTCString());
        return Promise.resolve({ request, status: 201, headers, bodyAsText: '' });
      },
    };
    const budgets = new BudgetRegistry(requestBudgetSchema.parse({}));
    const budget = budgets.storage('stscripted');
    const { Agent } = await import('node:https');
    const agent = new Agent({ keepAlive: false });
    const service = new BlobServiceClient('https://127.0.0.1:9/stscripted', new AnonymousCredential(), {
      httpClient: storageHttpClient(budget.httpClient(inner)),
      retryOptions: { retryDelayInMs: 1, maxRetryDelayInMs: 2 },
      ...{ agent },
    });
    const container = service.getContainerClient('records');
    await container.create();
    expect(budget.stats()).toMatchObject({ requests: 2, throttledResponses: 1 });
    await container.getBlockBlobClient('a.json').upload('{}', 2);
    const again = service.getContainerClient('records');
    await again.getBlockBlobClient('b.json').upload('{}', 2);
    const names: string[] = [];
    for await (const blob of again.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual(['a.json', 'b.json']);
    expect(seen.map((entry) => `${entry.method} ${entry.path}`)).toEqual([
      'PUT /stscripted/records',
      'PUT /stscripted/records',
      'PUT /stscripted/records/a.json',
      'PUT /stscripted/records/b.json',
      'GET /stscripted/records',
    ]);
    expect(budget.stats().requests).toBe(seen.length);
    // The agent policy's agent reaches the HTTP client (that is how the CA file is trusted).
    expect(seen.every((entry) => entry.agent)).toBe(true);
    agent.destroy();
  });

  it('names the budget by account: first DNS label in Azure, first path segment on loopback (Azurite)', () => {
    expect(storageAccountOfBlobUrl('https://stxshopaiprod.blob.core.windows.net')).toBe('stxshopaiprod');
    expect(storageAccountOfBlobUrl('https://127.0.0.1:10000/stlmsprod')).toBe('stlmsprod');
    expect(storageAccountOfBlobUrl('http://localhost:10000/devstoreaccount1/')).toBe('devstoreaccount1');
  });
});
