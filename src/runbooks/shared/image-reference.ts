/**
 * Container image references (`registry[:port]/repository[:tag][@digest]`): the one parser every
 * reader of images in use (image-purge, its apply re-check, inventory) goes through, so that a
 * reference is matched to a registry the same way wherever it is written.
 *
 * The grammar is the one of the OCI distribution reference (`distribution/reference`), read the
 * way Docker and the Container Apps / App Service pullers read it:
 * - the first path component is a registry host when it has a dot or a colon, is `localhost`, or
 *   has upper-case letters; otherwise the image is on Docker Hub (`docker.io`, with `library/`
 *   before a single-component name);
 * - a port after the host (`myreg.azurecr.io:443`) names the same registry host;
 * - hosts compare case-insensitively; repository paths are lower-case in every registry, so an
 *   upper-case path is matched lower-cased (Docker would refuse to pull it; matching it anyway
 *   can only keep more, never delete an image something pulls);
 * - `:tag@digest` pulls the digest (the tag is a label), and both are reported;
 * - neither a tag nor a digest means the tag `latest`.
 *
 * Anything else is refused with an {@link ImageReferenceError} rather than guessed at: a caller
 * that must prove an image unused fails closed on it.
 */
import { cloudEndpoints, type AzureCloudName } from '../../azure/cloud.ts';
import { OpsAutopilotError } from '../../errors.ts';

/** A parsed image reference. */
export interface ImageReference {
  /** The reference as written, trimmed. */
  readonly raw: string;
  /** Registry host, lower-case and without a port, e.g. `crxshopaiprod.azurecr.io`; `docker.io` for Docker Hub. */
  readonly registry: string;
  /** The port written after the host, e.g. `443` in `myreg.azurecr.io:443/app`. */
  readonly port?: number;
  /** Repository path, lower-case, e.g. `team/api` (Docker Hub: `library/nginx` for `nginx`). */
  readonly repository: string;
  /** The tag as written (tags are case-sensitive); `latest` when neither a tag nor a digest is written. */
  readonly tag?: string;
  /** The digest, lower-case (`sha256:…`), when the reference pins one. */
  readonly digest?: string;
}

/** A string that is not a valid image reference. */
export class ImageReferenceError extends OpsAutopilotError {
  override readonly name: string = 'ImageReferenceError';
  /** The offending reference, as written. */
  readonly reference: string;

  constructor(reference: string, problem: string) {
    super(`expected a container image reference (registry/repository[:tag][@digest]), found "${reference}": ${problem}`, { context: { reference } });
    this.reference = reference;
  }
}

const DOCKER_HUB = 'docker.io';
/** Other names of Docker Hub, as Docker normalises them. */
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
/** A path component: lower-case alphanumerics joined by `.`, `_`, `__` or dashes (distribution's grammar). */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([0-9a-f]{32,})$/;
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A scheme some tools put in front of a reference; no registry takes one, so it is dropped. */
const SCHEME = /^https?:\/\//i;

/**
 * Parses an image reference.
 *
 * @throws ImageReferenceError naming the reference and what is wrong with it.
 */
export function parseImageReference(text: string): ImageReference {
  const raw = text.trim();
  const fail = (problem: string): never => {
    throw new ImageReferenceError(raw, problem);
  };
  if (raw === '') fail('it is empty');
  if (raw.length > 4096) fail('it is longer than 4096 characters');
  // Whitespace, control characters, `$` of an unexpanded variable, quotes: never part of a reference.
  if (/[^\x21-\x7e]|[$"'`\\]/.test(raw)) fail('it contains characters no reference has (whitespace, quotes, `$` or a backslash)');
  const rest = raw.replace(SCHEME, '');

  let name = rest;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    name = rest.slice(0, at);
    const written = rest.slice(at + 1).toLowerCase();
    if (!DIGEST.test(written)) fail(`"${rest.slice(at + 1)}" is not a digest (algorithm:hex, e.g. sha256:<64 hex digits>)`);
    digest = written;
  }

  let host: string | undefined;
  let path = name;
  const slash = name.indexOf('/');
  if (slash > 0) {
    const first = name.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      host = first;
      path = name.slice(slash + 1);
    }
  }

  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) fail(`"${tag}" is not a tag (letters, digits, _, . and -, at most 128, not starting with . or -)`);
  }

  const repository = path.toLowerCase();
  if (repository === '') fail('it has no repository');
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) fail(`"${path}" is not a repository path (lower-case letters and digits, joined by ., _, __ or -, components separated by /)`);
  }

  const { registry, port } = host === undefined ? { registry: DOCKER_HUB, port: undefined } : parseHost(host, fail);
  const hub = registry === DOCKER_HUB;
  return {
    raw,
    registry,
    ...(port === undefined ? {} : { port }),
    repository: hub && !repository.includes('/') ? `library/${repository}` : repository,
    ...(tag === undefined && digest === undefined ? { tag: 'latest' } : tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

function parseHost(written: string, fail: (problem: string) => never): { registry: string; port: number | undefined } {
  let host = written.toLowerCase();
  let port: number | undefined;
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(host);
  if (bracketed !== null) {
    // An IPv6 literal, e.g. `[::1]:5000`.
    return { registry: `[${bracketed[1] ?? ''}]`, port: bracketed[2] === undefined ? undefined : portOf(bracketed[2], written, fail) };
  }
  const colon = host.indexOf(':');
  if (colon >= 0) {
    port = portOf(host.slice(colon + 1), written, fail);
    host = host.slice(0, colon);
  }
  const labels = host.split('.');
  if (host.length > 253 || !labels.every((label) => HOST_LABEL.test(label))) fail(`"${written}" is not a registry host (DNS name or IP address, optional :port)`);
  return { registry: DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host, port };
}

function portOf(text: string, host: string, fail: (problem: string) => never): number {
  const port = /^\d{1,5}$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
  if (!(port >= 1 && port <= 65_535)) fail(`"${host}" has no valid port (1-65535) after the colon`);
  return port;
}

/** The login server of a registry in a cloud, e.g. `crxshopaiprod.azurecr.io`. */
export function loginServerOf(registryName: string, cloud: AzureCloudName): string {
  return `${registryName.toLowerCase()}.${cloudEndpoints(cloud).containerRegistrySuffix}`;
}

/**
 * Whether a reference pulls from the registry `registryName` of `cloud`: its host is the login
 * server (any port), or another endpoint of that registry under the cloud's registry suffix
 * (`{name}.privatelink.azurecr.io`, regional `{name}.{region}.data.azurecr.io`). Registry names
 * have no dots, so no other registry's login server can look like one of these.
 */
export function pullsFromRegistry(reference: ImageReference, registryName: string, cloud: AzureCloudName): boolean {
  const name = registryName.toLowerCase();
  const suffix = cloudEndpoints(cloud).containerRegistrySuffix;
  return reference.registry === `${name}.${suffix}` || (reference.registry.startsWith(`${name}.`) && reference.registry.endsWith(`.${suffix}`));
}
