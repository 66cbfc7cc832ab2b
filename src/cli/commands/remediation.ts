/**
 * `ops-autopilot explain-alert <payload.json> --config <file> [--json]`,
 * `ops-autopilot explain-event <event.json> --config <file> [--json]`,
 * `ops-autopilot guardrails status --config <file> [--target T] [--json]` and
 * `ops-autopilot guardrails reset <target> --config <file> [--by <who>] [--json]`.
 *
 * explain-* are read-only: the guardrail store is opened read-only (a write throws before it
 * reaches the service), nothing is notified and no lock is taken. `guardrails status` reads;
 * `guardrails reset` is the one that writes (closes the breaker, ends cooldowns, recorded with
 * who did it).
 */
import { resolveWithArm } from '../../azure/discovery.ts';
import { readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseAlertBody, MAX_ALERT_BODY_BYTES } from '../../alerts/common-alert-schema.ts';
import { createAzureClients, type AzureClients } from '../../azure/clients.ts';
import { loadConfigFile } from '../../config/load.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { selectTargetsBy } from '../../config/target-selector.ts';
import { errorMessage } from '../../errors.ts';
import { MAX_EVENT_BODY_BYTES, parseEventGridBody } from '../../events/event-grid-schema.ts';
import { PayloadError } from '../../intake/payload.ts';
import { explainIntake, type Explanation } from '../../remediation/explain.ts';
import { guardrailStatus, openGuardrailStore, resetGuardrails, type GuardrailStatus, type GuardrailStore } from '../../remediation/guardrails.ts';
import type { RemediationIntake } from '../../remediation/rules.ts';
import { hasStateStore } from '../../state/tables.ts';
import { CliExit, EXIT, type CliIo } from '../output.ts';

/** Options of the explain commands. */
export interface ExplainOptions {
  readonly config: string;
  readonly json?: boolean;
}

async function readPayload(file: string, maxBytes: number): Promise<string> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new CliExit(EXIT.failure, `${file}: expected a payload file, found a directory or special file`);
    if (info.size > maxBytes) throw new CliExit(EXIT.failure, `${file}: expected at most ${String(maxBytes)} bytes, found ${String(info.size)}`);
    return await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof CliExit) throw error;
    throw new CliExit(EXIT.failure, `${file}: expected a readable payload file (${errorMessage(error)})`);
  }
}

/** A read-only store, or why there is none. */
function readOnlyStore(config: EstateConfig, clients: AzureClients): { store?: GuardrailStore; problem?: string } {
  if (!hasStateStore(config)) return { problem: 'the config names no state store (state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId)' };
  try {
    return { store: openGuardrailStore(config, clients, { readOnly: true }) };
  } catch (error) {
    return { problem: errorMessage(error) };
  }
}

function formatExplanation(explanation: Explanation): string {
  const lines: string[] = [];
  const intake = explanation.intake;
  lines.push(intake.type === 'alert' ? `alert ${intake.id}` : `event ${intake.id} (${intake.eventType ?? '?'})`);
  if (intake.type === 'alert') {
    lines.push(`  condition: ${intake.monitorCondition ?? '?'}, rule: ${intake.alertRule ?? '-'}, severity: ${intake.severity ?? '-'}, signal: ${intake.signalType ?? '-'}, service: ${intake.monitoringService ?? '-'}`);
    if ((intake.metricNames ?? []).length > 0) lines.push(`  metrics: ${(intake.metricNames ?? []).join(', ')}`);
  }
  lines.push(`  resources: ${intake.resources.join(', ') || 'none'}`);
  lines.push(`decision: ${explanation.decision}${explanation.dryRun && explanation.decision === 'remediate' ? ' (dry-run: planned and recorded, nothing applied)' : ''}`);
  lines.push(`  reason: ${explanation.reason}`);
  if (explanation.target !== null) lines.push(`target: ${explanation.target}`);
  if (explanation.rule !== null) lines.push(`rule: ${explanation.rule}`);
  if (explanation.ladder.length > 0) {
    lines.push('ladder:');
    explanation.ladder.forEach((rung, index) => {
      const params = Object.entries(rung.params).map(([key, value]) => `${key}=${JSON.stringify(value)}`).join(' ');
      lines.push(`  ${String(index + 1)}. ${rung.action}${params === '' ? '' : ` ${params}`}; verify ${String(rung.verify.consecutive)} good probe(s) ${String(rung.verify.intervalSeconds)} s apart within ${String(rung.verify.deadlineSeconds)} s${rung.verify.paths === undefined ? '' : ` on ${rung.verify.paths.join(', ')}`}; cooldown ${String(rung.cooldownMinutes)} min`);
    });
    lines.push(`  then escalate to ${explanation.escalate.join(', ') || 'nobody configured'}`);
  }
  if (explanation.guardrails.length > 0) {
    lines.push('guardrails (first rung, as of now):');
    for (const decision of explanation.guardrails) lines.push(`  ${decision.verdict.padEnd(5)} ${decision.guardrail.padEnd(12)} ${decision.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

async function explain(kind: 'alert' | 'event', file: string, options: ExplainOptions, io: CliIo): Promise<number> {
  const config = await loadConfigFile(options.config);
  const text = await readPayload(file, kind === 'alert' ? MAX_ALERT_BODY_BYTES : MAX_EVENT_BODY_BYTES);
  let intakes: RemediationIntake[];
  try {
    intakes = kind === 'alert' ? [parseAlertBody(text, { contentType: 'application/json' })] : parseEventGridBody(text, { contentType: 'application/json' });
  } catch (error) {
    if (!(error instanceof PayloadError)) throw error;
    if (options.json === true) io.stdout(`${JSON.stringify({ valid: false, decision: 'reject', reason: error.message, issues: error.issues }, null, 2)}\n`);
    else io.stderr(`invalid ${kind} payload: ${error.message}\n`);
    return EXIT.failure;
  }
  const clients = createAzureClients(config.azure);
  try {
    const { store, problem } = readOnlyStore(config, clients);
    const now = new Date();
    // The allow-list: the estate's resolved targets (scopes listed through ARM), as the app's.
    const { targets } = await resolveWithArm(config, clients);
    const explanations: Explanation[] = [];
    for (const intake of intakes) explanations.push(await explainIntake(config, targets, intake, store, { now, ...(problem === undefined ? {} : { stateProblem: problem }) }));
    if (options.json === true) {
      const [first] = explanations;
      const shaped = explanations.map((explanation) => ({ valid: true, ...explanation }));
      io.stdout(`${JSON.stringify(explanations.length === 1 ? shaped[0] : { valid: true, decision: first?.decision, reason: first?.reason, target: first?.target ?? null, rule: first?.rule ?? null, actions: first?.actions ?? [], events: shaped }, null, 2)}\n`);
    } else {
      io.stdout(explanations.map(formatExplanation).join('\n'));
    }
    return EXIT.ok;
  } finally {
    await clients.close();
  }
}

/** `explain-alert`: returns the exit code (0 valid payload, 1 invalid payload or config). */
export function explainAlertCommand(file: string, options: ExplainOptions, io: CliIo): Promise<number> {
  return explain('alert', file, options, io);
}

/** `explain-event`: returns the exit code (0 valid payload, 1 invalid payload or config). */
export function explainEventCommand(file: string, options: ExplainOptions, io: CliIo): Promise<number> {
  return explain('event', file, options, io);
}

/** Options of `guardrails status` and `guardrails reset`. */
export interface GuardrailsCommandOptions {
  readonly config: string;
  readonly target?: string;
  readonly json?: boolean;
  readonly by?: string;
  readonly dryRun?: boolean;
}

function writableStore(config: EstateConfig, clients: AzureClients, readOnly: boolean): GuardrailStore {
  if (!hasStateStore(config)) throw new CliExit(EXIT.failure, `estate ${config.estate}: expected a state store for the guardrails (state.tableServiceUrl, state.storageAccountId or runRecords.storageAccountId), found none`);
  return openGuardrailStore(config, clients, { readOnly });
}

function formatStatus(status: GuardrailStatus): string {
  const lines = [`estate ${status.estate} at ${status.at}`, `  kill switch: ${status.killSwitch.reason}`, `  estate actions in 24 h: ${String(status.estateActionsLastDay)}/${String(status.estateCap)}`];
  if (status.targets.length === 0) lines.push('  no guardrail state yet (no remediation has been evaluated)');
  for (const target of status.targets) {
    lines.push(target.targetId);
    const breaker = target.breaker;
    lines.push(`  breaker: ${breaker.state} (${String(breaker.failures)}/${String(breaker.threshold)} failed remediations)${breaker.openedAt === undefined ? '' : ` opened ${breaker.openedAt}`}${breaker.closesAt === undefined ? '' : `, closes ${breaker.closesAt}`}${breaker.resetBy === undefined ? '' : `; last reset by ${breaker.resetBy} at ${breaker.resetAt ?? '?'}`}`);
    for (const action of target.actions) {
      lines.push(`  ${action.action}: ${String(action.lastHour)} in the last hour, ${String(action.lastDay)} in 24 h; ${action.cooldownUntil === undefined ? 'no cooldown' : `cooldown until ${action.cooldownUntil}`}, back-off level ${String(action.backoffLevel)}${action.lastOutcome === undefined ? '' : `, last ${action.lastOutcome}`}`);
    }
    if (target.inProgress !== undefined) lines.push(`  in progress: ${target.inProgress.trigger} until ${target.inProgress.until} at the latest`);
    for (const entry of (target.recent ?? []).slice(0, 20)) lines.push(`  ${entry.firstSeen} ${entry.suppressed ? 'suppressed' : 'handled   '} ${entry.trigger}${entry.suppressed ? `: ${entry.reason}` : ''}`);
  }
  if (status.truncated) lines.push('(more targets than shown: narrow with --target)');
  return `${lines.join('\n')}\n`;
}

async function targetId(config: EstateConfig, clients: AzureClients, selector: string): Promise<string> {
  const { targets } = await resolveWithArm(config, clients);
  const [chosen] = selectTargetsBy(targets, [selector], 'estate targets');
  if (chosen === undefined) throw new CliExit(EXIT.usage, `expected --target to name an estate target, found "${selector}"`);
  return chosen.id;
}

/** `guardrails status`: reads only; exit 0, or 1 when the state cannot be read. */
export async function guardrailsStatusCommand(options: GuardrailsCommandOptions, io: CliIo): Promise<number> {
  const config = await loadConfigFile(options.config);
  const clients = createAzureClients(config.azure);
  try {
    const target = options.target === undefined ? undefined : await targetId(config, clients, options.target);
    const status = await guardrailStatus(writableStore(config, clients, true), target, { dryRun: options.dryRun === true });
    io.stdout(options.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    return EXIT.ok;
  } finally {
    await clients.close();
  }
}

/** `guardrails reset <target>`: closes the breaker and ends cooldowns; exit 0, 2 for an unknown target, 1 on failure. */
export async function guardrailsResetCommand(selector: string, options: GuardrailsCommandOptions, io: CliIo): Promise<number> {
  const config = await loadConfigFile(options.config);
  const by = options.by ?? `${userInfo().username} (cli)`;
  const clients = createAzureClients(config.azure);
  try {
    const id = await targetId(config, clients, selector);
    const reset = await resetGuardrails(writableStore(config, clients, false), id, by, { dryRun: options.dryRun === true });
    if (options.json === true) io.stdout(`${JSON.stringify(reset, null, 2)}\n`);
    else io.stdout(reset.found ? `reset ${id}: breaker was ${reset.breakerWas}, now closed; cooldowns ended (by ${reset.by} at ${reset.at})\n` : `nothing to reset: ${id} has no guardrail state\n`);
    return EXIT.ok;
  } finally {
    await clients.close();
  }
}
