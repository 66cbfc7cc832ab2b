/**
 * Escalations to PagerDuty through the Events API v2 (`POST /v2/enqueue`): a `trigger` opens (or
 * updates) an alert under a dedup key, a `resolve` with the same key closes it. One remediation
 * incident has one dedup key ({@link incidentDedupKey}), so a `Resolved` alert or a later
 * success resolves the page the escalation opened, and repeated escalations of one incident
 * update one PagerDuty alert instead of paging again.
 *
 * The routing (integration) key is a secret: the config names a Key Vault secret, the key is
 * read through the client layer when a page is sent, goes into the request body only, and is
 * scrubbed from every message this module returns (even when a server echoes it back). Results
 * carry the target's name and the dedup key, never the key.
 *
 * Payload shape (PagerDuty Events API v2): `routing_key`, `event_action`, `dedup_key`, and for a
 * trigger `payload` (`summary` ≤ 1024 characters, `source`, `severity`, `timestamp`,
 * `component`, `group`, `class`, `custom_details`), `links`, `client`.
 */
import { createHash } from 'node:crypto';
import type { Agent as HttpsAgent } from 'node:https';
import type { AzureClients } from '../azure/clients.ts';
import { isLoopbackUrl } from '../azure/credential.ts';
import { callAzure } from '../azure/errors.ts';
import type { EstateConfig, PagerDutyTarget } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import { assertNoSecrets, redactSecrets, redactString } from '../runs/secret-guard.ts';
import { httpsPostJson } from './https-post.ts';

/** PagerDuty's limit for `payload.summary`. */
export const PAGERDUTY_SUMMARY_MAX = 1024;
/** PagerDuty's limit for `dedup_key`. */
export const PAGERDUTY_DEDUP_KEY_MAX = 255;
/** What the body of a trigger may carry in `custom_details`, as JSON bytes; the rest is cut. */
export const CUSTOM_DETAILS_MAX_BYTES = 16_000;

/** A detail value as PagerDuty shows it. */
export type DetailJson = string | number | boolean | null | readonly DetailJson[] | { readonly [key: string]: DetailJson };

/** What to page about. */
export interface PagerDutyTrigger {
  readonly action: 'trigger';
  readonly dedupKey: string;
  /** One line: what is wrong and what was done. */
  readonly summary: string;
  /** The affected resource (its ARM id or host). */
  readonly source: string;
  /** Default: the target's configured severity. */
  readonly severity?: 'critical' | 'error' | 'warning' | 'info';
  /** When the problem was seen (ISO). */
  readonly timestamp?: string;
  readonly component?: string;
  /** e.g. the estate. */
  readonly group?: string;
  /** e.g. the alert rule. */
  readonly class?: string;
  /** The alert, every action with its evidence, the health probes. Secrets are masked before sending. */
  readonly details?: { readonly [key: string]: DetailJson };
  readonly links?: readonly { readonly href: string; readonly text: string }[];
}

/** Closes the alert of a dedup key. */
export interface PagerDutyResolve {
  readonly action: 'resolve';
  readonly dedupKey: string;
}

/** A page to send. */
export type PagerDutyEvent = PagerDutyTrigger | PagerDutyResolve;

/** What became of one page. */
export interface PagerDutyResult {
  /** The configured target's name. */
  readonly target: string;
  readonly action: PagerDutyEvent['action'];
  readonly dedupKey: string;
  readonly outcome: 'applied' | 'failed';
  /** One line, never the routing key. */
  readonly message: string;
}

/**
 * The dedup key of one incident: the estate, the target and the incident's own key (e.g. the
 * alert id, or the remediation id), hashed so that it is short, stable and reveals nothing.
 */
export function incidentDedupKey(estate: string, targetId: string, incident: string): string {
  const digest = createHash('sha256').update(`${estate}\n${targetId.toLowerCase()}\n${incident}`).digest('hex').slice(0, 32);
  return `ops-autopilot/${estate}/${digest}`.slice(0, PAGERDUTY_DEDUP_KEY_MAX);
}

/** Cuts `details` to at most {@link CUSTOM_DETAILS_MAX_BYTES} of JSON, dropping keys from the end. */
function boundedDetails(details: { readonly [key: string]: DetailJson }): { [key: string]: DetailJson } {
  const kept: { [key: string]: DetailJson } = {};
  const entries = Object.entries(details);
  let dropped = 0;
  for (const [key, value] of entries) {
    const next = { ...kept, [key]: value };
    if (Buffer.byteLength(JSON.stringify(next), 'utf8') > CUSTOM_DETAILS_MAX_BYTES) {
      dropped += 1;
      continue;
    }
    kept[key] = value;
  }
  if (dropped > 0) kept.omitted = `${dropped} detail field(s) left out to stay within ${CUSTOM_DETAILS_MAX_BYTES} bytes; see the remediation record`;
  return kept;
}

/**
 * The Events API v2 body of `event` for `routingKey`. Everything but the routing key passes the
 * secret guard (masked, then checked), so a detail that holds a secret never leaves.
 */
export function pagerDutyBody(routingKey: string, event: PagerDutyEvent, defaults: { readonly severity: PagerDutyTarget['severity'] }): Record<string, unknown> {
  if (event.dedupKey === '' || event.dedupKey.length > PAGERDUTY_DEDUP_KEY_MAX) {
    throw new RangeError(`PagerDuty dedup_key: expected 1 to ${PAGERDUTY_DEDUP_KEY_MAX} characters, found ${event.dedupKey.length}`);
  }
  if (event.action === 'resolve') return { routing_key: routingKey, event_action: 'resolve', dedup_key: event.dedupKey };
  const summary = event.summary.replace(/\s+/g, ' ').trim();
  const payload = {
    summary: summary.length > PAGERDUTY_SUMMARY_MAX ? `${summary.slice(0, PAGERDUTY_SUMMARY_MAX - 1)}…` : summary,
    source: event.source,
    severity: event.severity ?? defaults.severity,
    ...(event.timestamp === undefined ? {} : { timestamp: event.timestamp }),
    ...(event.component === undefined ? {} : { component: event.component }),
    ...(event.group === undefined ? {} : { group: event.group }),
    ...(event.class === undefined ? {} : { class: event.class }),
    ...(event.details === undefined ? {} : { custom_details: boundedDetails(event.details) }),
  };
  const rest = redactSecrets({ payload, ...(event.links === undefined ? {} : { links: event.links.map((link) => ({ href: link.href, text: link.text })) }) });
  assertNoSecrets(rest, `PagerDuty event ${event.dedupKey}`);
  return { routing_key: routingKey, event_action: 'trigger', dedup_key: event.dedupKey, client: 'Ops Autopilot', ...rest };
}

/** Options of {@link sendPagerDutyEvent}. */
export interface SendPagerDutyOptions {
  /** Trust for the events URL; default: the client layer's agent (system roots plus `azure.caFile`). */
  readonly agent?: HttpsAgent;
  readonly timeoutMs?: number;
}

/**
 * Sends `event` to the configured PagerDuty target `targetName`. Never throws: a page that could
 * not be sent is a `failed` result with the reason (the escalation's own outcome is unchanged),
 * and no message carries the routing key.
 */
export async function sendPagerDutyEvent(
  config: Pick<EstateConfig, 'notifications' | 'azure'>,
  clients: Pick<AzureClients, 'secretClient' | 'agent'>,
  targetName: string,
  event: PagerDutyEvent,
  options: SendPagerDutyOptions = {},
): Promise<PagerDutyResult> {
  const base = { target: targetName, action: event.action, dedupKey: event.dedupKey };
  const target = config.notifications.pagerduty.find((candidate) => candidate.name === targetName);
  if (target === undefined) {
    const names = config.notifications.pagerduty.map((candidate) => candidate.name);
    return { ...base, outcome: 'failed', message: `expected a PagerDuty target named ${targetName} in notifications.pagerduty, found ${names.length === 0 ? 'none' : names.join(', ')}` };
  }
  if (config.azure.sandboxTokenEndpoint !== undefined && !isLoopbackUrl(target.eventsUrl)) {
    return { ...base, outcome: 'failed', message: `PagerDuty ${target.name}: expected a loopback events URL with the sandbox credential, found ${new URL(target.eventsUrl).origin}; nothing sent` };
  }
  let routingKey: string;
  try {
    const secrets = await clients.secretClient(target.routingKey.vault);
    const secret = await callAzure({ resourceId: `${target.routingKey.vault}/secrets/${target.routingKey.secret}`, operation: 'get PagerDuty routing key' }, () => secrets.getSecret(target.routingKey.secret));
    routingKey = secret.value ?? '';
  } catch (error) {
    return { ...base, outcome: 'failed', message: `PagerDuty ${target.name}: the routing key could not be read: ${redactString(errorMessage(error))}` };
  }
  if (routingKey === '') {
    return { ...base, outcome: 'failed', message: `PagerDuty ${target.name}: expected a routing key in ${target.routingKey.vault}/${target.routingKey.secret}, found an empty secret` };
  }
  const scrub = (text: string): string => redactString(text.split(routingKey).join('[routing key]'));
  try {
    const body = pagerDutyBody(routingKey, event, { severity: target.severity });
    const agent = options.agent ?? (await clients.agent());
    const status = await httpsPostJson(target.eventsUrl, body, {
      name: `pagerduty ${target.name}`,
      ...(agent === undefined ? {} : { agent }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    return { ...base, outcome: 'applied', message: `PagerDuty ${target.name}: ${event.action} ${event.dedupKey} accepted (HTTP ${status})` };
  } catch (error) {
    return { ...base, outcome: 'failed', message: scrub(errorMessage(error)) };
  }
}
