/**
 * The container images an App Service site configuration runs, from `linuxFxVersion` and
 * `windowsFxVersion`:
 * - `DOCKER|<image>`: one image;
 * - `COMPOSE|<base64 Docker Compose file>`: the `image` of every service;
 * - `KUBE|<base64 Kubernetes YAML>` (the retired multi-container preview): every `image` field
 *   of every document;
 * - anything else (`NODE|20-lts`, `PYTHON|3.12`, `sitecontainers`, empty): no image of its own
 *   (a sidecar-enabled app lists its containers as `sitecontainers`, read separately).
 *
 * A COMPOSE or KUBE payload that is not valid base64, not UTF-8, not YAML of the expected shape,
 * or names no image is an error ({@link SiteImageError}), never "no images": whoever must prove an
 * image unused fails closed on it.
 */
import { parseAllDocuments } from 'yaml';
import { errorMessage, OpsAutopilotError } from '../../errors.ts';

/** One image a site configuration runs. */
export interface SiteImage {
  readonly image: string;
  /** Where in a multi-container configuration it comes from, e.g. `compose service web`. */
  readonly via?: string;
}

/** A site configuration whose container images cannot be read. */
export class SiteImageError extends OpsAutopilotError {
  override readonly name: string = 'SiteImageError';
}

/** The site configuration fields that name container images. */
export type FxVersionField = 'linuxFxVersion' | 'windowsFxVersion';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Compose files and Kubernetes YAML are small; anything far larger is not one. */
const MAX_PAYLOAD_BYTES = 1_000_000;

/**
 * The images of one `linuxFxVersion` or `windowsFxVersion` value.
 *
 * @throws SiteImageError when a COMPOSE or KUBE payload cannot be read, naming the field and why.
 */
export function imagesOfFxVersion(value: string | null | undefined, field: FxVersionField): SiteImage[] {
  const text = (value ?? '').trim();
  const bar = text.indexOf('|');
  if (bar < 0) return [];
  const kind = text.slice(0, bar).toUpperCase();
  const payload = text.slice(bar + 1).trim();
  const fail = (problem: string, cause?: unknown): never => {
    throw new SiteImageError(`${field} ${kind}|…: ${problem}`, { context: { field, kind }, ...(cause === undefined ? {} : { cause }) });
  };
  switch (kind) {
    case 'DOCKER':
      if (payload === '') fail('expected an image after "DOCKER|", found none');
      return [{ image: payload }];
    case 'COMPOSE':
      return composeImages(decodeYaml(payload, fail), fail);
    case 'KUBE':
      return kubeImages(decodeYaml(payload, fail), fail);
    default:
      // A built-in runtime stack (NODE|20-lts, DOTNETCORE|8.0, ...): the platform's image, not a registry's.
      return [];
  }
}

/** The images of a site or slot configuration: Linux first, then Windows containers. */
export function imagesOfSiteConfig(config: { readonly linuxFxVersion?: string | null; readonly windowsFxVersion?: string | null }): SiteImage[] {
  return [...imagesOfFxVersion(config.linuxFxVersion, 'linuxFxVersion'), ...imagesOfFxVersion(config.windowsFxVersion, 'windowsFxVersion')];
}

/** Decodes a base64 payload into the YAML documents it holds. */
function decodeYaml(payload: string, fail: (problem: string, cause?: unknown) => never): unknown[] {
  const compact = payload.replace(/\s+/g, '');
  if (compact === '' || !BASE64.test(compact)) fail('expected base64 content, found characters outside the base64 alphabet or nothing');
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > MAX_PAYLOAD_BYTES) fail(`expected at most ${String(MAX_PAYLOAD_BYTES)} bytes once decoded, found ${String(bytes.length)}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    return fail('expected UTF-8 text once decoded from base64, found other bytes', error);
  }
  // Compose files use YAML 1.1 merge keys (`<<: *defaults`) to share an image between services.
  const documents = parseAllDocuments(text, { merge: true });
  if (!Array.isArray(documents)) return fail('expected YAML once decoded, found an empty document');
  const values: unknown[] = [];
  for (const document of documents) {
    const problem = document.errors[0];
    if (problem !== undefined) fail(`expected YAML once decoded, found: ${problem.message.split('\n')[0] ?? ''}`, problem);
    try {
      values.push(document.toJS({ maxAliasCount: 100 }));
    } catch (error) {
      fail(`expected YAML once decoded, found: ${errorMessage(error)}`, error);
    }
  }
  return values;
}

/** A value as JSON for a message; JSON.stringify returns undefined for undefined despite its declared type. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined;
  return json ?? 'nothing';
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function composeImages(documents: readonly unknown[], fail: (problem: string) => never): SiteImage[] {
  const [compose, ...others] = documents;
  if (others.length > 0 || !isMapping(compose) || !isMapping(compose.services)) {
    fail('expected one Docker Compose document with a services mapping, found another shape');
  }
  const services = (compose as { services: Record<string, unknown> }).services;
  const images: SiteImage[] = [];
  for (const [name, service] of Object.entries(services)) {
    if (!isMapping(service)) fail(`expected service "${name}" to be a mapping, found ${shown(service)}`);
    const image = service.image;
    if (image === undefined) continue;
    if (typeof image !== 'string' || image.trim() === '') fail(`expected service "${name}" to name its image as a string, found ${shown(image)}`);
    images.push({ image: image.trim(), via: `compose service ${name}` });
  }
  if (images.length === 0) fail('expected at least one service with an image, found none');
  return images;
}

function kubeImages(documents: readonly unknown[], fail: (problem: string) => never): SiteImage[] {
  const images: SiteImage[] = [];
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        walk(item, `${path}[${String(index)}]`);
      });
      return;
    }
    if (!isMapping(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (key === 'image') {
        if (typeof child !== 'string' || child.trim() === '') fail(`expected ${at} to be an image reference, found ${shown(child)}`);
        images.push({ image: child.trim(), via: `kubernetes ${at}` });
      } else {
        walk(child, at);
      }
    }
  };
  documents.forEach((document, index) => {
    if (document === null || document === undefined) return;
    if (!isMapping(document)) fail(`expected document ${String(index + 1)} to be a mapping, found another shape`);
    walk(document, documents.length > 1 ? `[${String(index)}]` : '');
  });
  if (images.length === 0) fail('expected at least one image field, found none');
  return images;
}
