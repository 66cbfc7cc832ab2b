import { createRequire, Module } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type {
  CoreFunctionCallback,
  CoreFunctionMetadata,
  CoreHookCallback,
  CoreProgrammingModel,
} from './functions-core-types.ts';
import { FunctionRegistrationError } from './host-errors.ts';

/** A function registration captured from `@azure/functions`, exactly as the library passed it. */
export interface CapturedFunction {
  readonly metadata: CoreFunctionMetadata;
  readonly callback: CoreFunctionCallback;
}

/** A hook registration (`appStart`, `preInvocation`, ...) captured from the library. */
export interface CapturedHook {
  readonly hookName: string;
  readonly callback: CoreHookCallback;
  disposed: boolean;
}

/** Everything one app entry point registered while it was loaded. */
export interface CapturedApp {
  readonly entryPoint: string;
  readonly functions: readonly CapturedFunction[];
  readonly hooks: CapturedHook[];
}

const CORE_MODULE_ID = '@azure/functions-core';
// A path that cannot exist on disk, so the cached module can never collide with a real file.
const VIRTUAL_FILENAME = path.join(path.parse(process.cwd()).root, '__local-functions-host__', 'functions-core.cjs');
const WORKER_VERSION = '3.10.1-local';
const HOST_VERSION = '4.1040.0-local';

let programmingModel: CoreProgrammingModel | undefined;
let activeCapture: { functions: CapturedFunction[]; hooks: CapturedHook[]; entryPoint: string } | undefined;
const loadedApps = new Map<string, CapturedApp>();
let installed = false;

class Disposable {
  static from(...likes: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => {
      for (const like of likes) like.dispose();
    });
  }
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): unknown {
    const call = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return call?.();
  }
}

function requireCapture(what: string): NonNullable<typeof activeCapture> {
  if (!activeCapture) {
    // The real worker rejects registrations after startup too; failing here keeps a late
    // registration from silently never being served.
    throw new FunctionRegistrationError(
      `${what} was called outside app startup: registrations must happen while the entry point is being loaded by the local host`,
      { call: what },
    );
  }
  return activeCapture;
}

const coreApi = {
  version: WORKER_VERSION,
  hostVersion: HOST_VERSION,
  Disposable,
  registerFunction(metadata: CoreFunctionMetadata, callback: CoreFunctionCallback): Disposable {
    const capture = requireCapture(`registerFunction("${metadata.name}")`);
    if (capture.functions.some((f) => f.metadata.name.toLowerCase() === metadata.name.toLowerCase())) {
      throw new FunctionRegistrationError(
        `function "${metadata.name}" is registered twice by ${capture.entryPoint}; expected unique function names`,
        { function: metadata.name },
      );
    }
    const entry: CapturedFunction = { metadata, callback };
    capture.functions.push(entry);
    return new Disposable(() => {
      const index = capture.functions.indexOf(entry);
      if (index >= 0) capture.functions.splice(index, 1);
    });
  },
  registerHook(hookName: string, callback: CoreHookCallback): Disposable {
    const known = ['appStart', 'appTerminate', 'preInvocation', 'postInvocation', 'log'];
    if (!known.includes(hookName)) {
      throw new RangeError(`Unrecognized hook "${hookName}"; expected one of ${known.join(', ')}`);
    }
    const capture = requireCapture(`registerHook("${hookName}")`);
    const hook: CapturedHook = { hookName, callback, disposed: false };
    capture.hooks.push(hook);
    return new Disposable(() => {
      hook.disposed = true;
    });
  },
  setProgrammingModel(model: CoreProgrammingModel): void {
    programmingModel = model;
  },
  getProgrammingModel(): CoreProgrammingModel {
    if (!programmingModel) {
      throw new FunctionRegistrationError('no programming model was set; expected @azure/functions to call setProgrammingModel');
    }
    return programmingModel;
  },
  log(level: string, category: string, message: string): void {
    process.stderr.write(`[functions-core ${category}/${level}] ${message}\n`);
  },
};

/** The object served for `require('@azure/functions-core')`. Exported for tests of the shim itself. */
export const functionsCoreApi = coreApi;

interface ModuleResolver {
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
  _cache: Record<string, Module | undefined>;
}

/**
 * Makes `require('@azure/functions-core')` resolve to this host's implementation of the worker
 * module, the way the Functions Node worker provides it. Idempotent; neither `@azure/functions`
 * nor `durable-functions` is patched — only Node's CommonJS resolution learns one more id.
 */
export function installFunctionsCoreShim(): void {
  if (installed) return;
  // Node's public typings omit the resolver internals; this is the documented-by-usage hook point.
  const resolver = Module as unknown as ModuleResolver;
  const cached = new Module(VIRTUAL_FILENAME);
  cached.filename = VIRTUAL_FILENAME;
  cached.exports = coreApi;
  cached.loaded = true;
  resolver._cache[VIRTUAL_FILENAME] = cached;
  const original = resolver._resolveFilename.bind(resolver);
  resolver._resolveFilename = (request, parent, isMain, options) =>
    request === CORE_MODULE_ID ? VIRTUAL_FILENAME : original(request, parent, isMain, options);
  installed = true;
  // Sanity check: the library must see this module, not a "test mode" fallback.
  const requireHere = createRequire(import.meta.url);
  if (requireHere(CORE_MODULE_ID) !== coreApi) {
    throw new FunctionRegistrationError('the @azure/functions-core shim did not take effect', { module: CORE_MODULE_ID });
  }
}

/** The programming model `@azure/functions` installed, once any function has been registered. */
export function currentProgrammingModel(): CoreProgrammingModel {
  return coreApi.getProgrammingModel();
}

/**
 * Loads an app entry point (ESM or CJS, `.ts` under tsx/vitest) and captures every registration it
 * makes. A module runs once per process, so loading the same entry point again returns the
 * registrations captured the first time (the handlers are the same closures).
 */
export async function loadApp(entryPoint: string): Promise<CapturedApp> {
  installFunctionsCoreShim();
  const resolved = path.resolve(entryPoint);
  const existing = loadedApps.get(resolved);
  if (existing) return existing;
  if (activeCapture) {
    throw new FunctionRegistrationError(
      `cannot load ${resolved} while ${activeCapture.entryPoint} is still loading; load entry points one at a time`,
      { entryPoint: resolved },
    );
  }
  const capture = { functions: [] as CapturedFunction[], hooks: [] as CapturedHook[], entryPoint: resolved };
  activeCapture = capture;
  try {
    await import(pathToFileURL(resolved).href);
  } finally {
    activeCapture = undefined;
  }
  const app: CapturedApp = { entryPoint: resolved, functions: capture.functions, hooks: capture.hooks };
  loadedApps.set(resolved, app);
  return app;
}
