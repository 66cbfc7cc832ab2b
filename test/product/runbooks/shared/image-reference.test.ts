/**
 * The one image reference parser, and matching a reference to a registry: every way a
 * reference can be written (explicit ports, upper-case hosts, `tag@digest`, digest only, the
 * default tag, Docker Hub defaults), and the inputs it refuses rather than guesses at.
 */
import { describe, expect, it } from 'vitest';
import { ImageReferenceError, loginServerOf, parseImageReference, pullsFromRegistry } from '../../../../src/runbooks/shared/image-reference.ts';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseImageReference', () => {
  it.each([
    ['crx.azurecr.io/team/app:v1', { registry: 'crx.azurecr.io', repository: 'team/app', tag: 'v1' }],
    ['crx.azurecr.io:443/app:v1', { registry: 'crx.azurecr.io', port: 443, repository: 'app', tag: 'v1' }],
    ['CrX.AzureCR.io:443/App:V1', { registry: 'crx.azurecr.io', port: 443, repository: 'app', tag: 'V1' }],
    [`crx.azurecr.io/app@${D}`, { registry: 'crx.azurecr.io', repository: 'app', digest: D }],
    [`crx.azurecr.io/app:v1@${D.toUpperCase().replace('SHA256', 'sha256')}`, { registry: 'crx.azurecr.io', repository: 'app', tag: 'v1', digest: D }],
    ['crx.azurecr.io/app', { registry: 'crx.azurecr.io', repository: 'app', tag: 'latest' }],
    ['nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['bitnami/redis:7.2', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2' }],
    ['index.docker.io/library/nginx:1', { registry: 'docker.io', repository: 'library/nginx', tag: '1' }],
    ['registry-1.docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['localhost:5000/app:1', { registry: 'localhost', port: 5000, repository: 'app', tag: '1' }],
    ['Registry/app:1', { registry: 'registry', repository: 'app', tag: '1' }],
    ['[::1]:5000/app', { registry: '[::1]', port: 5000, repository: 'app', tag: 'latest' }],
    ['10.0.0.4:8443/a/b/c:x', { registry: '10.0.0.4', port: 8443, repository: 'a/b/c', tag: 'x' }],
    ['  crx.azurecr.io/app:v1  ', { registry: 'crx.azurecr.io', repository: 'app', tag: 'v1' }],
    ['https://crx.azurecr.io/app:v1', { registry: 'crx.azurecr.io', repository: 'app', tag: 'v1' }],
    ['crx.azurecr.io/my_app.v2__x-y:1.0-rc_1', { registry: 'crx.azurecr.io', repository: 'my_app.v2__x-y', tag: '1.0-rc_1' }],
  ])('%s', (text, expected) => {
    const parsed = parseImageReference(text);
    expect({ ...parsed, raw: undefined }).toEqual({ ...expected, raw: undefined });
    expect(parsed.raw).toBe(text.trim());
  });

  it.each([
    ['', /it is empty/],
    ['   ', /it is empty/],
    ['crx.azurecr.io/app:v 1', /characters no reference has/],
    ['${REGISTRY}/app:v1', /characters no reference has/],
    ['crx.azurecr.io/app@sha256:xyz', /is not a digest/],
    ['crx.azurecr.io/app@sha256:abc', /is not a digest/],
    ['crx.azurecr.io/app:-v1', /is not a tag/],
    ['crx.azurecr.io/app:v1:v2', /is not a repository path/],
    ['crx.azurecr.io//app', /is not a repository path/],
    ['crx.azurecr.io/', /has no repository/],
    ['crx.azurecr.io:99999/app', /no valid port/],
    ['crx..azurecr.io/app', /is not a registry host/],
    ['-crx.azurecr.io/app', /is not a registry host/],
    [`a/${'b'.repeat(4100)}`, /longer than 4096/],
  ])('refuses %j', (text, problem) => {
    expect(() => parseImageReference(text)).toThrow(ImageReferenceError);
    expect(() => parseImageReference(text)).toThrow(problem);
  });

  it('parses a hostile 4 KB reference in linear time', () => {
    const started = performance.now();
    for (const text of [`crx.azurecr.io/${'a-'.repeat(2000)}!`, `crx.azurecr.io/${'a.'.repeat(2000)}`, `${'a.'.repeat(120)}/x`]) {
      expect(() => parseImageReference(text)).toThrow(ImageReferenceError);
    }
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('pullsFromRegistry', () => {
  const pulls = (text: string, registry = 'crx', cloud: 'AzureCloud' | 'AzureUSGovernment' | 'AzureChinaCloud' = 'AzureCloud'): boolean =>
    pullsFromRegistry(parseImageReference(text), registry, cloud);

  it('matches the login server whatever the case or port, and the registry\'s other endpoints', () => {
    expect(loginServerOf('CRX', 'AzureCloud')).toBe('crx.azurecr.io');
    expect(pulls('crx.azurecr.io/app:v1')).toBe(true);
    expect(pulls('CRX.AZURECR.IO:443/app:v1')).toBe(true);
    expect(pulls('crx.azurecr.io:5000/app:v1')).toBe(true);
    expect(pulls('crx.privatelink.azurecr.io/app:v1')).toBe(true);
    expect(pulls('crx.westeurope.data.azurecr.io/app:v1')).toBe(true);
    expect(pulls('crx.azurecr.us/app:v1', 'crx', 'AzureUSGovernment')).toBe(true);
  });

  it('does not match another registry, another cloud or Docker Hub', () => {
    expect(pulls('crxx.azurecr.io/app:v1')).toBe(false);
    expect(pulls('xcrx.azurecr.io/app:v1')).toBe(false);
    expect(pulls('crx.azurecr.us/app:v1')).toBe(false);
    expect(pulls('crx.example.com/app:v1')).toBe(false);
    expect(pulls('crx/app:v1')).toBe(false);
    expect(pulls('docker.io/crx/app:v1')).toBe(false);
  });
});
