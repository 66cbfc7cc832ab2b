/**
 * The parameters of each remediation action, as a ladder rung's `params` holds them.
 *
 * These schemas are the actions' own statement of what they need and the bounds they accept;
 * the estate config's remediation schema (owned by the guardrails work) is meant to use them, so
 * `config validate` and the actions agree. Every scale action has a required maximum: there is
 * no unbounded scale.
 */
import { z } from 'zod';
import { ActionParamsError, type RemediationActionName, type RemediationKind } from './types.ts';

const slotName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,58}$/, 'expected a deployment slot name');
const skuName = z.string().regex(/^[A-Za-z0-9_]{1,40}$/, 'expected a SKU name such as P1v3 or Standard_D2ds_v5');
const ladder = z
  .array(skuName)
  .min(2)
  .max(10)
  .refine((names) => new Set(names.map((name) => name.toLowerCase())).size === names.length, { message: 'expected each SKU once' });

/** Web app, function app or slot `restart`. */
export const webRestartParamsSchema = z
  .object({
    /** Restart this deployment slot instead of production. */
    slot: slotName.optional(),
    /** Soft restart (restart the app's processes, not the workers). */
    soft: z.boolean().default(false),
  })
  .strict();

/** Web app `swap-back`: undo the last swap into production, if it is recent. */
export const swapBackParamsSchema = z
  .object({
    /** Only a swap with this slot counts (default: the slot of the last swap). */
    slot: slotName.optional(),
    /** The last swap must have completed at most this long ago. */
    windowMinutes: z.number().int().min(1).max(7 * 24 * 60).default(60),
  })
  .strict();

/** App Service plan `scale-out`: more workers, by a step, never above the maximum. */
export const webScaleOutParamsSchema = z
  .object({
    step: z.number().int().min(1).max(10).default(1),
    /** Most workers this action sets (required: no unbounded scale). */
    maximum: z.number().int().min(2).max(100),
  })
  .strict();

/** App Service plan or PostgreSQL `scale-up`: the next SKU of an explicit ladder. */
export const scaleUpParamsSchema = z
  .object({
    /** SKU names from smallest to largest, e.g. [P1v3, P2v3, P3v3]; the top is the maximum. */
    ladder,
  })
  .strict();

/** Container app `restart`: the active revisions that receive traffic. */
export const containerAppRestartParamsSchema = z.object({}).strict();

/** Container app `scale-out`: raise minReplicas by a step up to a maximum (a revision-scope change). */
export const containerAppScaleOutParamsSchema = z
  .object({
    step: z.number().int().min(1).max(50).default(1),
    /** Most minReplicas this action sets (required: no unbounded scale); maxReplicas is raised to it only when below. */
    maximum: z.number().int().min(1).max(300),
  })
  .strict();

/** Container app `rollback`: the previous healthy revision takes 100 % of traffic. */
export const rollbackParamsSchema = z
  .object({
    /** Roll back to this revision (name or suffix) instead of the newest older healthy one. */
    revision: z.string().min(1).max(100).optional(),
  })
  .strict();

/** PostgreSQL `restart`. */
export const postgresRestartParamsSchema = z.object({}).strict();

/** Every action's parameter schema, by kind and name. */
export const ACTION_PARAMS_SCHEMAS = {
  webSite: { restart: webRestartParamsSchema, 'swap-back': swapBackParamsSchema, 'scale-out': webScaleOutParamsSchema, 'scale-up': scaleUpParamsSchema },
  containerApp: { restart: containerAppRestartParamsSchema, 'scale-out': containerAppScaleOutParamsSchema, rollback: rollbackParamsSchema },
  postgresFlexibleServer: { restart: postgresRestartParamsSchema, 'scale-up': scaleUpParamsSchema },
} as const satisfies Record<RemediationKind, Partial<Record<RemediationActionName, z.ZodType>>>;

/** Parses `params` with `schema`, or throws {@link ActionParamsError} listing every problem with its path. */
export function parseParams<S extends z.ZodType>(schema: S, params: unknown, action: RemediationActionName, resourceId: string): z.output<S> {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.length === 0 ? 'params' : `params.${issue.path.join('.')}`}: ${issue.message}`);
  throw new ActionParamsError(action, resourceId, `invalid parameters: ${problems.join('; ')}`, { expected: 'parameters matching the action schema', found: problems.join('; ') });
}
