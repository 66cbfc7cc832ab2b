/**
 * `GET /api/status` THROUGH THE LOCAL HOST against the kilometers sandbox world (issue 12): the
 * function key is required; with the world's planted problems the answer is no-go with every
 * critical item failing for its planted reason, each with evidence linking its run record; the
 * read changes nothing (no mutating Azure request, no state table created); once the problems
 * are fixed in the sandbox the answer is go.
 */
import { describe, expect, it } from 'vitest';
import { STATE_TABLES, stateDestination } from '../../../src/state/tables.ts';
import type { EstateStatus, StatusItem } from '../../../src/status/model.ts';
import { mutatingRequests } from '../../support/runbook-context.ts';
import { STATUS_KEYS, useStatusWorld } from '../../support/status-world.ts';

const world = useStatusWorld();

async function status(key: string | null = STATUS_KEYS.function, query = ''): Promise<{ code: number; body: EstateStatus }> {
  const res = await fetch(`${world.host().baseUrl}/api/status${query}`, { headers: key === null ? {} : { 'x-functions-key': key } });
  const text = await res.text();
  return { code: res.status, body: (text === '' ? {} : JSON.parse(text)) as EstateStatus };
}

function itemOf(body: EstateStatus, id: StatusItem['id']): StatusItem {
  const found = body.items.find((entry) => entry.id === id);
  if (found === undefined) throw new Error(`no item ${id}`);
  return found;
}

async function tableExists(name: string): Promise<boolean> {
  const config = world.config();
  const client = await world.clients().tableClient(stateDestination(config), name);
  try {
    for await (const _entity of client.listEntities()) break;
    return true;
  } catch {
    return false;
  }
}

describe('GET /api/status (kilometers world)', () => {
  it('needs the function key', async () => {
    expect((await status(null)).code).toBe(401);
    expect((await status('wrong')).code).toBe(401);
  });

  it('is no-go with the planted problems, each critical item failing for its reason with evidence; and reads only', async () => {
    await world.plant();
    await world.sandbox().clearRequests();
    const { code, body } = await status();
    expect(code).toBe(200);
    expect(body.decision).toBe('no-go');
    expect(body.blocking).toEqual(['backups', 'restore-drill', 'alerts', 'secrets']);
    const backups = itemOf(body, 'backups');
    expect(backups.reasons.join('\n')).toMatch(/keeps backups for 3 days, fewer than the 7 promised/);
    const run = backups.evidence.find((entry) => entry.what.startsWith('newest backup-verify run'));
    expect(run?.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(run?.link).toBe(`${world.host().baseUrl}/api/runs/${run?.runId ?? ''}`);
    expect(itemOf(body, 'restore-drill').summary).toBe('psql-kilometers-prod-k7x2: no restore drill in the last 7 days');
    expect(itemOf(body, 'alerts').reasons).toEqual(['metric alert rule opsap-asp-kilometers-prod-k7x2-memory for MemoryPercentage of asp-kilometers-prod-k7x2 exists but is disabled']);
    const secrets = itemOf(body, 'secrets');
    expect(secrets.reasons.some((reason) => reason.includes('ApiKey-Maps'))).toBe(true);
    expect(secrets.reasons.some((reason) => reason.includes('DatabaseConnectionString'))).toBe(true);
    // The run link of the evidence answers with that record.
    const record = await fetch(run?.link ?? '', { headers: { 'x-functions-key': STATUS_KEYS.function } });
    expect(record.status).toBe(200);
    // Reads only: no mutating Azure request, no state table created by the read.
    expect(mutatingRequests(await world.sandbox().requests())).toEqual([]);
    expect(await tableExists(STATE_TABLES.drillHistory)).toBe(false);
    expect(JSON.stringify(body)).not.toContain('code=');
  });

  it('filters the recent runs by runbook and outcome', async () => {
    const { body } = await status(STATUS_KEYS.function, '?runbook=secret-expiry&since=1d&limit=5');
    expect(body.runFilters).toEqual({ runbook: 'secret-expiry', since: '1d', limit: 5 });
    expect(body.recentRuns.length).toBeGreaterThan(0);
    expect(body.recentRuns.every((entry) => entry.runbook === 'secret-expiry' && entry.link.endsWith(`/api/runs/${entry.runId}`))).toBe(true);
    expect((await status(STATUS_KEYS.function, '?outcome=cancelled')).body.recentRuns).toEqual([]);
  });

  it('is go once the problems are fixed in the sandbox', async () => {
    await world.fix();
    const { body } = await status();
    expect(body.items.filter((entry) => entry.critical && entry.verdict === 'fail').map((entry) => `${entry.id}: ${entry.reasons.join('; ')}`)).toEqual([]);
    expect(body.decision).toBe('go');
    expect(body.history.drills).toHaveLength(1);
    expect(body.history.drills[0]).toMatchObject({ rtoSeconds: 1320, rpoSeconds: 45, verdict: 'passed' });
    expect(body.history.backupAge.length).toBeGreaterThanOrEqual(2);
    const drill = itemOf(body, 'restore-drill').evidence[0];
    expect(drill?.link).toBe(`${world.host().baseUrl}/api/runs/3c7f1c7e-5d2a-4f7e-9a55-1a2b3c4d5e6f`);
  });
});
