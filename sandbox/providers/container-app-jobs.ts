/**
 * Microsoft.App/jobs: Container Apps jobs (manual, scheduled or event-driven) and their
 * executions, read-only. Jobs are consumers of registry images, so image-purge lists them in
 * every subscription; the shapes follow the Microsoft.App spec (2025-07-01 examples
 * `Jobs_ListBySubscription`, `Job_Get`, `Job_Executions_Get`).
 */
import { listedOf, type ListedResource } from './resources.ts';
import { z } from 'zod';
import type { ProviderContext, RouteDefinition, SandboxProvider, WorldFile, WorldResource } from '../contract.ts';
import {
  armEnvelope,
  armId,
  armPage,
  armRead,
  baseOf,
  daysBefore,
  hoursBefore,
  json,
  param,
  parseSpec,
  resourceNotFound,
  ResourceStore,
  systemData,
  trackedResourceReads,
  WorldSpecError,
  worldFilePath,
  type ArmResourceBase,
} from './common.ts';

const JOBS = 'Microsoft.App/jobs';
const ENVIRONMENTS = 'Microsoft.App/managedEnvironments';
/** JobExecutionRunningState in the spec. */
const EXECUTION_STATES = ['Running', 'Processing', 'Stopped', 'Degraded', 'Failed', 'Unknown', 'Succeeded'] as const;

const executionSpecSchema = z
  .object({
    /** The execution name is `{job}-{suffix}`. */
    suffix: z.string().regex(/^[a-z0-9-]+$/),
    status: z.enum(EXECUTION_STATES).default('Succeeded'),
    startedMinutesAgo: z.number().min(0).default(60),
    /** Minutes it ran; omit for one still running. Defaults to 5 for a finished execution. */
    durationMinutes: z.number().min(0).optional(),
    /** The image it started with; defaults to the job's. */
    image: z.string().min(1).optional(),
    initImages: z.array(z.string().min(1)).optional(),
  })
  .strict();

const jobSpecSchema = z
  .object({
    environment: z.string().min(1),
    triggerType: z.enum(['Manual', 'Schedule', 'Event']).default('Manual'),
    /** Required for `Schedule`. */
    cronExpression: z.string().min(1).optional(),
    image: z.string().min(1),
    initImages: z.array(z.string().min(1)).default([]),
    /** Registry login server the job pulls from, with the system identity. */
    registryServer: z.string().optional(),
    createdDaysAgo: z.number().min(0).default(30),
    executions: z.array(executionSpecSchema).default([]),
  })
  .strict();

/** One execution of a job. */
export interface JobExecutionState {
  readonly name: string;
  readonly status: (typeof EXECUTION_STATES)[number];
  readonly started: Date;
  readonly ended: Date | undefined;
  readonly image: string;
  readonly initImages: readonly string[];
}

/** A Container Apps job. */
export interface ContainerAppJobState extends ArmResourceBase {
  readonly environmentId: string;
  readonly triggerType: 'Manual' | 'Schedule' | 'Event';
  readonly cronExpression: string | undefined;
  readonly created: Date;
  readonly registryServer: string | undefined;
  image: string;
  initImages: string[];
  /** Newest first, as the service lists them. */
  executions: JobExecutionState[];
}

/** The Microsoft.App/jobs provider. */
export class ContainerAppJobsProvider implements SandboxProvider {
  readonly name = 'Microsoft.App/jobs';
  readonly types = [JOBS] as const;
  private readonly jobs = new ResourceStore<ContainerAppJobState>();

  /** Every resource, for the generic `Microsoft.Resources` list operations. */
  listResources(): ListedResource[] {
    return this.jobs.all().map((resource) => listedOf(resource, JOBS));
  }

  seed(world: WorldFile, resources: readonly WorldResource[], context: ProviderContext): void {
    const now = context.now();
    for (const resource of resources) {
      const spec = parseSpec(jobSpecSchema, world, resource);
      if (spec.triggerType === 'Schedule' && spec.cronExpression === undefined) {
        throw new WorldSpecError(worldFilePath(world), JOBS, resource.name, 'expected cronExpression for triggerType Schedule, found none');
      }
      const executions = spec.executions
        .map((execution): JobExecutionState => {
          const started = hoursBefore(now, execution.startedMinutesAgo / 60);
          const finished = execution.status !== 'Running' && execution.status !== 'Processing';
          const duration = execution.durationMinutes ?? (finished ? Math.min(5, execution.startedMinutesAgo) : undefined);
          return {
            name: `${resource.name}-${execution.suffix}`,
            status: execution.status,
            started,
            ended: duration === undefined ? undefined : new Date(started.getTime() + duration * 60_000),
            image: execution.image ?? spec.image,
            initImages: [...(execution.initImages ?? spec.initImages)],
          };
        })
        .sort((a, b) => b.started.getTime() - a.started.getTime());
      this.jobs.add({
        ...baseOf(world, resource, JOBS),
        environmentId: armId(world.subscriptionId, resource.resourceGroup, ENVIRONMENTS, spec.environment),
        triggerType: spec.triggerType,
        cronExpression: spec.cronExpression,
        created: daysBefore(now, spec.createdDaysAgo),
        registryServer: spec.registryServer,
        image: spec.image,
        initImages: [...spec.initImages],
        executions,
      });
    }
  }

  /** A job by ARM coordinates, for tests. */
  getJob(subscriptionId: string, resourceGroup: string, name: string): ContainerAppJobState | undefined {
    return this.jobs.get(subscriptionId, resourceGroup, JOBS, name);
  }

  routes(): readonly RouteDefinition[] {
    const rg = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/Microsoft.App';
    const job = `${rg}/jobs/{name}`;
    return [
      ...trackedResourceReads(this.jobs, JOBS, (found) => this.jobJson(found)),
      armRead(`${job}/executions`, 'Microsoft.App/jobs/executions.list', (request, context) =>
        this.jobs.serve(JOBS, request, context, (found) => armPage(request, context, found.executions.map((execution) => this.executionJson(found, execution)))),
      ),
      armRead(`${job}/executions/{executionName}`, 'Microsoft.App/jobs/executions.get', (request, context) =>
        this.jobs.serve(JOBS, request, context, (found) => {
          const name = param(request, 'executionName');
          const execution = found.executions.find((candidate) => candidate.name.toLowerCase() === name.toLowerCase());
          return execution === undefined ? resourceNotFound(context, `${JOBS}/executions`, `${found.name}/${name}`, found.resourceGroup) : json(200, this.executionJson(found, execution));
        }),
      ),
    ];
  }

  private templateJson(job: ContainerAppJobState, image: string, initImages: readonly string[]): Record<string, unknown> {
    return {
      containers: [{ image, name: job.name, resources: { cpu: 0.5, memory: '1Gi' } }],
      ...(initImages.length === 0
        ? {}
        : { initContainers: initImages.map((initImage, index) => ({ image: initImage, name: `${job.name}-init-${String(index + 1)}`, resources: { cpu: 0.25, memory: '0.5Gi' } })) }),
    };
  }

  private jobJson(job: ContainerAppJobState): Record<string, unknown> {
    const trigger =
      job.triggerType === 'Schedule'
        ? { scheduleTriggerConfig: { cronExpression: job.cronExpression, replicaCompletionCount: 1, parallelism: 1 } }
        : job.triggerType === 'Event'
          ? { eventTriggerConfig: { replicaCompletionCount: 1, parallelism: 1, scale: { minExecutions: 0, maxExecutions: 10, pollingInterval: 30, rules: [] } } }
          : { manualTriggerConfig: { replicaCompletionCount: 1, parallelism: 1 } };
    return {
      ...armEnvelope(job, JOBS),
      properties: {
        provisioningState: 'Succeeded',
        environmentId: job.environmentId,
        workloadProfileName: 'Consumption',
        configuration: {
          triggerType: job.triggerType,
          replicaTimeout: 1800,
          replicaRetryLimit: 1,
          ...trigger,
          secrets: [],
          registries: job.registryServer === undefined ? [] : [{ server: job.registryServer, identity: 'system' }],
        },
        template: this.templateJson(job, job.image, job.initImages),
        outboundIpAddresses: ['20.87.1.11'],
        eventStreamEndpoint: `https://${job.location}.azurecontainerapps.dev/subscriptions/${job.subscriptionId}/resourceGroups/${job.resourceGroup}/containerApps/${job.name}/eventstream`,
      },
      systemData: systemData(job.created, job.created),
    };
  }

  private executionJson(job: ContainerAppJobState, execution: JobExecutionState): Record<string, unknown> {
    return {
      id: `${job.id}/executions/${execution.name}`,
      name: execution.name,
      type: `${JOBS}/executions`,
      properties: {
        status: execution.status,
        startTime: execution.started.toISOString(),
        ...(execution.ended === undefined ? {} : { endTime: execution.ended.toISOString() }),
        template: this.templateJson(job, execution.image, execution.initImages),
      },
    };
  }

  snapshot(): unknown {
    return this.jobs.all().map((job) => ({
      id: job.id,
      triggerType: job.triggerType,
      image: job.image,
      initImages: job.initImages,
      executions: job.executions.map((execution) => ({ name: execution.name, status: execution.status, image: execution.image })),
    }));
  }
}
