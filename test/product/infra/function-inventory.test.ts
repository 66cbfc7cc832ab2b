/**
 * Drift between the deployment and the app: the compiled template (app settings, the function
 * the Event Grid subscriptions deliver to, the route the action group calls) against the
 * functions the real entry point registers, loaded through the local host.
 *
 * Functions the deployment already names but the app does not register yet are listed in
 * infra/pending-functions.json; when one of them appears, this test says so, and the change that
 * adds it removes it from the list. A function the app gains that the deployment does not wire
 * (a timer without its schedule setting, say) fails here too.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import type { FunctionInfo } from '../../../local-host/function-registry.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import { ALL_TIMERS } from '../../../src/functions/runbook-schedules.ts';
import { loadMainTemplate, resourceAt } from '../../support/arm-template.ts';

interface PendingFunction {
  readonly name: string;
  readonly trigger: 'http' | 'timer' | 'eventGrid';
  readonly route?: string;
  readonly methods?: string[];
  readonly authLevel?: string;
  readonly setting?: string;
  readonly defaultSchedule?: string;
  readonly issue: number;
}

const pending = (JSON.parse(readFileSync('infra/pending-functions.json', 'utf8')) as { pending: PendingFunction[] }).pending;
const main = loadMainTemplate();
const siteConfig = resourceAt(main, 'app').properties?.siteConfig as { appSettings: { name: string; value: string }[] };
const appSettings = new Map(siteConfig.appSettings.map((s) => [s.name, s.value]));
const scheduleDefaults = main.parameters?.schedules?.defaultValue as Record<string, string>;

let host: LocalHost;
let functions: readonly FunctionInfo[];
beforeAll(async () => {
  // No schedule settings in the environment: the inventory shows the code's defaults.
  for (const timer of ALL_TIMERS) Reflect.deleteProperty(process.env, timer.setting);
  host = await startLocalHost({ entryPoint: 'src/functions/index.ts', port: 0, clock: new VirtualClock(), enableTimers: false });
  functions = host.functions;
});
afterAll(async () => {
  await host.stop();
});

/** The function the app registers under `name`, or the pending entry for it. */
function registeredOrPending(name: string): { registered?: FunctionInfo; pending?: PendingFunction } {
  return { registered: functions.find((f) => f.name === name), pending: pending.find((p) => p.name === name) };
}

describe('the deployment against the app\'s function inventory', () => {
  it('lists as pending only functions the app does not register yet', () => {
    const arrived = pending.filter((p) => functions.some((f) => f.name === p.name)).map((p) => `${p.name} (issue ${p.issue})`);
    expect(arrived, 'these now exist: remove them from infra/pending-functions.json').toEqual([]);
  });

  it('sets the schedule setting of every timer the app registers, defaulting to the code\'s schedule', () => {
    const timers = functions.filter((f) => f.triggerType === 'timer');
    expect(timers.length).toBeGreaterThanOrEqual(ALL_TIMERS.length);
    for (const timer of timers) {
      const setting = ALL_TIMERS.find((t) => t.functionName === timer.name)?.setting;
      expect(setting, `timer ${timer.name}: its schedule setting is unknown to infra; add it to ALL_TIMERS (ALL_TIMERS or ORCHESTRATION_TIMERS) and to main.bicep's schedules`).toBeDefined();
      expect(appSettings.has(setting!), `main.bicep sets ${setting}`).toBe(true);
      expect(scheduleDefaults[setting!], `default of ${setting} in main.bicep`).toBe(timer.timer?.schedule);
    }
  });

  it('sets no schedule setting that no timer reads, except those of pending timers', () => {
    const known = new Set([...ALL_TIMERS.map((t) => t.setting), ...pending.flatMap((p) => (p.setting === undefined ? [] : [p.setting]))]);
    const schedules = [...appSettings.keys()].filter((name) => name.endsWith('_SCHEDULE'));
    expect(schedules.filter((s) => !known.has(s))).toEqual([]);
    for (const p of pending.filter((entry) => entry.trigger === 'timer')) {
      expect(scheduleDefaults[p.setting!], `${p.setting} default (design.md)`).toBe(p.defaultSchedule);
    }
    expect(Object.keys(scheduleDefaults).sort()).toEqual(schedules.sort());
  });

  it('delivers Event Grid events to an Event Grid trigger of the app (or a pending one)', () => {
    const expression = String(main.variables?.eventGridFunctionId);
    const name = /\/functions\/([A-Za-z0-9_-]+)/.exec(expression)?.[1];
    expect(name, expression).toBeDefined();
    const { registered, pending: planned } = registeredOrPending(name!);
    if (registered !== undefined) expect(registered.triggerType).toBe('eventGrid');
    else expect(planned?.trigger, `${name} is neither registered nor pending`).toBe('eventGrid');
  });

  it('has the action group call a POST route of the app with function-level auth (or a pending one)', () => {
    const receivers = resourceAt(main, 'actionGroup').properties?.webhookReceivers as { serviceUri: string }[];
    const route = /\/api\/([A-Za-z0-9/_-]+)\?code=/.exec(receivers[0]!.serviceUri)?.[1];
    expect(route).toBeDefined();
    const registered = functions.find((f) => f.http?.route === route);
    if (registered !== undefined) {
      expect(registered.http?.methods).toContain('POST');
      expect(registered.http?.authLevel).toBe('function');
    } else {
      const planned = pending.find((p) => p.route === route);
      expect(planned, `route ${route} is neither registered nor pending`).toBeDefined();
      expect(planned?.methods).toContain('POST');
      expect(planned?.authLevel).toBe('function');
    }
    // The key in the URL is that function's own.
    const functionName = (resourceAt(main, 'alertsFunction').name.match(/'([A-Za-z0-9_-]+)'\)\]$/) ?? [])[1];
    expect(functionName).toBe(registered?.name ?? pending.find((p) => p.route === route)?.name);
  });

  it('exposes no HTTP function anonymously except health', () => {
    const anonymous = functions.filter((f) => f.http?.authLevel === 'anonymous').map((f) => f.name);
    expect(anonymous).toEqual(['health']);
    for (const p of pending.filter((entry) => entry.trigger === 'http')) expect(p.authLevel, p.name).not.toBe('anonymous');
  });
});
