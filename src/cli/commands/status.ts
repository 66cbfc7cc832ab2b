/**
 * `ops-autopilot status --config <file> [--json] [--runbook R] [--outcome O] [--since 7d] [--page <file>]`:
 * the go/no-go evidence of an estate in the terminal, the same `collectStatus` as
 * `GET /api/status` and the page, read directly with the CLI's credential. Reads only.
 * Exit 0 for go, 3 for no-go, 1 when the configuration is invalid.
 */
import { writeFile } from 'node:fs/promises';
import { createAzureClients } from '../../azure/clients.ts';
import { loadConfigFile } from '../../config/load.ts';
import type { EstateConfig } from '../../config/schema.ts';
import { collectStatus } from '../../status/collect.ts';
import type { EstateStatus } from '../../status/model.ts';
import { renderStatusPage } from '../../status/page.ts';
import { EXIT, type CliIo } from '../output.ts';

/** Options of {@link statusCommand}. */
export interface StatusCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly runbook?: string;
  readonly outcome?: string;
  readonly since?: string;
  /** Also write the HTML page to this file. */
  readonly page?: string;
}

/** The status of an estate config, read with the config's credential. */
export async function estateStatus(config: EstateConfig, filters: Pick<StatusCommandOptions, 'runbook' | 'outcome' | 'since'> = {}): Promise<EstateStatus> {
  const clients = createAzureClients(config.azure);
  try {
    return await collectStatus({ config, clients, filters: { ...filters } });
  } finally {
    await clients.close();
  }
}

/** The status as lines for a terminal: decision first, then each item, its reasons and its evidence. */
export function formatStatus(status: EstateStatus): string {
  const lines = [`estate ${status.estate}: ${status.decision === 'go' ? 'GO' : 'NO-GO'} (${status.generatedAt})`, `  ${status.rule}`];
  if (status.blocking.length > 0) lines.push(`  blocked by: ${status.blocking.join(', ')}`);
  for (const item of status.items) {
    lines.push('', `${item.verdict === 'pass' ? 'PASS' : 'FAIL'}  ${item.title}${item.critical ? ' (critical)' : ' (not critical)'}: ${item.summary}`);
    for (const reason of item.reasons.slice(1)) lines.push(`      ${reason}`);
    for (const entry of item.evidence) {
      const run = entry.runId === undefined ? '' : ` [run ${entry.runId}]`;
      lines.push(`      ${entry.result.padEnd(4)} ${entry.what}: ${entry.detail}${run}${entry.at === undefined ? '' : ` at ${entry.at}`}`);
    }
  }
  for (const problem of status.problems) lines.push(`problem: ${problem}`);
  lines.push('', `recent runs (since ${status.runFilters.since}): ${String(status.recentRuns.length)}; "ops-autopilot runs show <runId> --config <file>" prints a record`);
  return `${lines.join('\n')}\n`;
}

/** Runs `status`; returns the exit code. */
export async function statusCommand(options: StatusCommandOptions, io: CliIo): Promise<number> {
  const config = await loadConfigFile(options.config);
  const status = await estateStatus(config, options);
  if (options.page !== undefined) await writeFile(options.page, renderStatusPage(status));
  if (options.json === true) io.stdout(`${JSON.stringify(status, null, 2)}\n`);
  else io.stdout(formatStatus(status) + (options.page === undefined ? '' : `page: ${options.page}\n`));
  return status.decision === 'go' ? EXIT.ok : EXIT.findings;
}
