import type { CapturedFunction } from './functions-core-shim.ts';
import type { CoreBindingInfo } from './functions-core-types.ts';
import { FunctionRegistrationError, MissingAppSettingError } from './host-errors.ts';
import type { CronSchedule } from '../src/config/ncrontab.ts';
import { parseNcrontab } from '../src/config/ncrontab.ts';

/** HTTP methods the host serves when a function does not restrict them. */
export const ALL_HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/** Function-level auth, as on the `httpTrigger` binding. */
export type AuthLevel = 'anonymous' | 'function' | 'admin';

/** One registered function, as the inventory shows it. */
export interface FunctionInfo {
  readonly name: string;
  /** Trigger binding type without the `Trigger` suffix: `http`, `timer`, `eventGrid`, `orchestration`, `activity`, ... */
  readonly triggerType: string;
  readonly triggerBindingName: string;
  readonly http?: { readonly route: string; readonly methods: readonly string[]; readonly authLevel: AuthLevel };
  readonly timer?: {
    /** The schedule as registered (may be a `%Setting%` expression). */
    readonly scheduleExpression: string;
    /** The NCRONTAB after binding expressions were resolved from app settings. */
    readonly schedule: string;
    readonly runOnStartup: boolean;
    /** `useMonitor` as registered; undefined lets the host decide (off for sub-minute schedules). */
    readonly useMonitor: boolean | undefined;
  };
  readonly eventGrid?: { readonly bindingName: string };
  /** Durable bindings: the trigger kind for durable functions, and whether a durable client is bound. */
  readonly durable: { readonly kind?: 'orchestration' | 'activity' | 'entity'; readonly clientBindingName?: string };
  /** Every binding exactly as registered (name → binding). */
  readonly bindings: Readonly<Record<string, CoreBindingInfo>>;
}

/** The registered functions of one host instance plus the objects needed to run them. */
export interface FunctionRegistry {
  readonly functions: readonly FunctionInfo[];
  get(name: string): { info: FunctionInfo; captured: CapturedFunction } | undefined;
  schedules(): ReadonlyMap<string, CronSchedule>;
}

/** Resolves `%Name%` binding expressions from app settings, as the host does for binding properties. */
export function resolveBindingExpression(value: string, settings: Readonly<Record<string, string>>, functionName: string): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const found = settings[name];
    if (found === undefined) {
      throw new MissingAppSettingError(
        `function "${functionName}" refers to app setting "%${name}%" which is not defined in local settings`,
        { function: functionName, setting: name },
      );
    }
    return found;
  });
}

function stringProp(binding: CoreBindingInfo, key: string): string | undefined {
  const value = binding[key];
  return typeof value === 'string' ? value : undefined;
}

function describe(captured: CapturedFunction, settings: Readonly<Record<string, string>>): FunctionInfo {
  const { name, bindings } = captured.metadata;
  const triggerEntry = Object.entries(bindings).find(([, b]) => b.direction === 'in' && /trigger$/i.test(b.type ?? ''));
  if (!triggerEntry) {
    throw new FunctionRegistrationError(`function "${name}" has no trigger binding; expected exactly one`, { function: name });
  }
  const [triggerBindingName, trigger] = triggerEntry;
  const rawType = trigger.type ?? '';
  const triggerType = rawType.replace(/Trigger$/i, '');
  const clientEntry = Object.entries(bindings).find(([, b]) => b.type === 'durableClient' || b.type === 'orchestrationClient');
  const durableKind: FunctionInfo['durable']['kind'] =
    triggerType === 'orchestration' || triggerType === 'activity' || triggerType === 'entity' ? triggerType : undefined;
  const base: FunctionInfo = {
    name,
    triggerType,
    triggerBindingName,
    durable: { kind: durableKind, clientBindingName: clientEntry?.[0] },
    bindings,
  };
  if (triggerType.toLowerCase() === 'http') {
    const route = resolveBindingExpression(stringProp(trigger, 'route') ?? name, settings, name).replace(/^\/+|\/+$/g, '');
    const methodsRaw = trigger.methods;
    const methods = Array.isArray(methodsRaw) && methodsRaw.length > 0
      ? methodsRaw.map((m) => String(m).toUpperCase())
      : [...ALL_HTTP_METHODS];
    const level = (stringProp(trigger, 'authLevel') ?? 'function').toLowerCase();
    if (level !== 'anonymous' && level !== 'function' && level !== 'admin') {
      throw new FunctionRegistrationError(`function "${name}" has authLevel "${level}"; expected anonymous, function or admin`, { function: name });
    }
    return { ...base, triggerType: 'http', http: { route, methods, authLevel: level } };
  }
  if (triggerType.toLowerCase() === 'timer') {
    const scheduleExpression = stringProp(trigger, 'schedule');
    if (!scheduleExpression) {
      throw new FunctionRegistrationError(`timer function "${name}" has no schedule`, { function: name });
    }
    const schedule = resolveBindingExpression(scheduleExpression, settings, name);
    return {
      ...base,
      triggerType: 'timer',
      timer: { scheduleExpression, schedule, runOnStartup: trigger.runOnStartup === true, useMonitor: typeof trigger.useMonitor === 'boolean' ? trigger.useMonitor : undefined },
    };
  }
  if (triggerType.toLowerCase() === 'eventgrid') {
    return { ...base, triggerType: 'eventGrid', eventGrid: { bindingName: triggerBindingName } };
  }
  return base;
}

/** Builds the inventory of a captured app, resolving `%Setting%` expressions and validating schedules. */
export function buildRegistry(functions: readonly CapturedFunction[], settings: Readonly<Record<string, string>>): FunctionRegistry {
  const byName = new Map<string, { info: FunctionInfo; captured: CapturedFunction }>();
  const schedules = new Map<string, CronSchedule>();
  for (const captured of functions) {
    const info = describe(captured, settings);
    byName.set(info.name.toLowerCase(), { info, captured });
    if (info.timer) {
      schedules.set(info.name, parseNcrontab(info.timer.schedule));
    }
  }
  const infos = [...byName.values()].map((e) => e.info).sort((a, b) => a.name.localeCompare(b.name));
  return {
    functions: infos,
    get: (name) => byName.get(name.toLowerCase()),
    schedules: () => schedules,
  };
}
