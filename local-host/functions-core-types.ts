/**
 * The subset of the Functions Node worker's `@azure/functions-core` module contract that
 * `@azure/functions` v4 calls. Written from the worker's published contract (types-core);
 * only the members the library uses are modelled.
 */

/** One binding of a function, as the library registers it (`type`, `direction`, plus binding-specific properties). */
export interface CoreBindingInfo {
  type?: string | null;
  direction?: 'in' | 'out' | 'inout' | null;
  name?: string;
  [property: string]: unknown;
}

/** Metadata passed to `registerFunction`. */
export interface CoreFunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, CoreBindingInfo>;
  retryOptions?: unknown;
}

/** The handler the library registers (it wraps the user's handler). */
export type CoreFunctionCallback = (...args: unknown[]) => unknown;

/** RPC typed data (the subset the library reads and writes). */
export interface CoreTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  stream?: Uint8Array | null;
  http?: CoreHttpData | null;
  int?: number | null;
  double?: number | null;
}

/** RPC HTTP request/response data. */
export interface CoreHttpData {
  method?: string | null;
  url?: string | null;
  headers?: Record<string, string> | null;
  body?: CoreTypedData | null;
  params?: Record<string, string> | null;
  statusCode?: string | null;
  query?: Record<string, string> | null;
  cookies?: CoreHttpCookie[] | null;
  enableContentNegotiation?: boolean | null;
}

/** RPC cookie as produced by the library's `toRpcHttpCookie`. */
export interface CoreHttpCookie {
  name?: string | null;
  value?: string | null;
  domain?: { value?: string | null } | null;
  path?: { value?: string | null } | null;
  expires?: { value?: { seconds?: number | null } | null } | null;
  secure?: { value?: boolean | null } | null;
  httpOnly?: { value?: boolean | null } | null;
  sameSite?: string | null;
  maxAge?: { value?: number | null } | null;
}

/** One input binding value of an invocation request. */
export interface CoreParameterBinding {
  name?: string | null;
  data?: CoreTypedData | null;
}

/** Invocation request, as the host sends it to the worker. */
export interface CoreInvocationRequest {
  invocationId?: string | null;
  functionId?: string | null;
  inputData?: CoreParameterBinding[] | null;
  triggerMetadata?: Record<string, CoreTypedData> | null;
}

/** Invocation response produced by the library's invocation model. */
export interface CoreInvocationResponse {
  invocationId?: string | null;
  outputData?: CoreParameterBinding[] | null;
  returnValue?: CoreTypedData | null;
}

/** Log level names used by the worker contract. */
export type CoreLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';

/** Context the worker hands to the programming model for each invocation. */
export interface CoreInvocationContext {
  invocationId: string;
  request: CoreInvocationRequest;
  metadata: { name: string; bindings: Record<string, CoreBindingInfo> };
  state?: 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';
  log(level: CoreLogLevel, category: 'user' | 'system' | 'customMetric', message: string): void;
}

/** What the library's `InvocationModel` does for one invocation. */
export interface CoreInvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: CoreFunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<CoreInvocationResponse>;
}

/** The programming model the library installs with `setProgrammingModel`. */
export interface CoreProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreContext: CoreInvocationContext): CoreInvocationModel;
  getCapabilities?(capabilities: Record<string, string>): Promise<Record<string, string>> | Record<string, string>;
}

/** Hook callback as registered by the library's `app.hook.*`. */
export type CoreHookCallback = (context: Record<string, unknown>) => unknown;
