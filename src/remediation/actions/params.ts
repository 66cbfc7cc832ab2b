/**
 * The actions' parameters come from the estate config's remediation schema
 * (`src/config/remediation-schema.ts`), the one home of every action's parameters, so
 * `config validate` and the actions accept exactly the same rungs. A rung the schema refused
 * never gets here; a hand-built one (tests, the CLI) is checked again with the same schema.
 */
import type { z } from 'zod';
import { ActionParamsError, type RemediationActionName } from './types.ts';

export {
  containerRestartParamsSchema,
  containerScaleOutParamsSchema,
  postgresRestartParamsSchema,
  postgresScaleUpParamsSchema,
  rollbackParamsSchema,
  swapBackParamsSchema,
  webRestartParamsSchema,
  webScaleOutParamsSchema,
  webScaleUpParamsSchema,
} from '../../config/remediation-schema.ts';

/** Parses `params` with `schema`, or throws {@link ActionParamsError} listing every problem with its path. */
export function parseParams<S extends z.ZodType>(schema: S, params: unknown, action: RemediationActionName, resourceId: string): z.output<S> {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.length === 0 ? 'params' : `params.${issue.path.join('.')}`}: ${issue.message}`);
  throw new ActionParamsError(action, resourceId, `invalid parameters: ${problems.join('; ')}`, { expected: 'parameters matching the action schema', found: problems.join('; ') });
}
