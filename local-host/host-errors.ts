/** Base class of every error raised by the local Functions host; `context` names the resource involved. */
export class LocalHostError extends Error {
  readonly context: Readonly<Record<string, string>>;
  constructor(message: string, context: Record<string, string> = {}) {
    super(message);
    this.name = new.target.name;
    this.context = context;
  }
}

/** The app's entry point registered something the local host cannot represent (bad route, schedule, duplicate name...). */
export class FunctionRegistrationError extends LocalHostError {}

/** A `%Setting%` binding expression names an app setting that is not defined. */
export class MissingAppSettingError extends LocalHostError {}

/** An invocation was requested for a function that does not exist or cannot be invoked that way. */
export class FunctionNotFoundError extends LocalHostError {}

/** A function invocation threw; `cause` carries the original error. */
export class FunctionInvocationError extends LocalHostError {}
