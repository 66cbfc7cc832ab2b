/**
 * azure-pipelines.yml: the stages in order, each gated on the one before, deploy only from main
 * through an environment (where the approvals live), the smoke test after it and a rollback only
 * when the smoke test failed; nothing about the target hard-coded.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { exampleEstates } from '../../../scripts/infra-params.ts';

interface Step {
  readonly task?: string;
  readonly script?: string;
  readonly condition?: string;
  readonly inputs?: Record<string, string | boolean>;
  readonly download?: string;
  readonly artifact?: string;
}
interface Job {
  readonly job?: string;
  readonly deployment?: string;
  readonly environment?: string;
  readonly steps?: Step[];
  readonly strategy?: { runOnce: { deploy: { steps: Step[] } } };
}
interface Stage {
  readonly stage: string;
  readonly dependsOn?: string | string[];
  readonly condition?: string;
  readonly jobs: Job[];
}
interface Pipeline {
  readonly parameters: { name: string; default?: string; values?: string[] }[];
  readonly stages: Stage[];
  readonly trigger: unknown;
}

const text = readFileSync('azure-pipelines.yml', 'utf8');
const pipeline = parse(text) as Pipeline;
const stage = (name: string): Stage => pipeline.stages.find((s) => s.stage === name)!;
const steps = (s: Stage): Step[] => s.jobs.flatMap((j) => j.steps ?? j.strategy?.runOnce.deploy.steps ?? []);
const scripts = (s: Stage): string => steps(s).map((st) => `${st.script ?? ''}\n${String(st.inputs?.inlineScript ?? '')}`).join('\n');

describe('azure-pipelines.yml', () => {
  it('runs build and test, infra, deploy, smoke and rollback, each after the one before', () => {
    expect(pipeline.stages.map((s) => s.stage)).toEqual(['Build', 'Infra', 'Deploy', 'Smoke', 'Rollback']);
    expect(stage('Build').dependsOn).toBeUndefined();
    expect(stage('Infra').dependsOn).toBe('Build');
    expect(stage('Deploy').dependsOn).toBe('Infra');
    expect(stage('Smoke').dependsOn).toBe('Deploy');
    expect(stage('Rollback').dependsOn).toEqual(['Deploy', 'Smoke']);
  });

  it('gates each stage: deploy only from main after a green what-if, rollback only when the smoke test failed after a deployment', () => {
    expect(stage('Infra').condition).toBe('succeeded()');
    expect(stage('Deploy').condition).toBe("and(succeeded(), eq(variables['Build.SourceBranch'], 'refs/heads/main'))");
    expect(stage('Smoke').condition).toBe('succeeded()');
    expect(stage('Rollback').condition).toBe("and(succeeded('Deploy'), failed('Smoke'))");
  });

  it('builds on Node 22 and publishes JUnit results even when tests fail, then the package as an artifact', () => {
    const build = steps(stage('Build'));
    expect(build.find((s) => s.task === 'NodeTool@0')?.inputs?.versionSpec).toBe('22.x');
    const order = build.map((s) => s.task ?? s.script ?? '');
    const index = (pattern: RegExp): number => order.findIndex((s) => pattern.test(s));
    expect(index(/^npm ci/)).toBeLessThan(index(/typecheck/));
    expect(index(/typecheck/)).toBeLessThan(index(/lint/));
    expect(index(/lint/)).toBeLessThan(index(/vitest run .*--reporter=junit/));
    const publish = build.find((s) => s.task === 'PublishTestResults@2')!;
    expect(publish.condition).toBe('succeededOrFailed()');
    expect(publish.inputs?.testResultsFormat).toBe('JUnit');
    expect(index(/^PublishTestResults/)).toBeGreaterThan(index(/vitest/));
    expect(index(/^npm run build/)).toBeGreaterThan(index(/^PublishTestResults/));
    expect(index(/^npm run package -- --estate \$\{\{ parameters\.estate \}\}/)).toBeGreaterThan(index(/^npm run build/));
    expect(build.at(-1)?.task).toBe('PublishPipelineArtifact@1');
  });

  it('shows the what-if of the compiled template in the infra stage', () => {
    expect(scripts(stage('Infra'))).toMatch(/az bicep build --file infra\/main\.bicep/);
    // The pipeline's compiler is the one infra/main.json was built with.
    const pinned = /Azure\.Bicep\.CommandLine\.linux-x64" Version="\[([^\]]+)\]"/.exec(readFileSync('infra/tools/bicep-tools.csproj', 'utf8'))?.[1];
    expect(pinned).toBeDefined();
    expect(scripts(stage('Infra'))).toContain(`az bicep install --version v${pinned!}`);
    expect(scripts(stage('Infra'))).toMatch(/az deployment group what-if[^]*--parameters '\$\(paramsFile\)'/);
  });

  it('deploys through an environment: infra, the package, then the triggers that need it; keeps the previous package', () => {
    const deploy = stage('Deploy').jobs[0]!;
    expect(deploy.deployment).toBeDefined();
    expect(deploy.environment).toBe('${{ parameters.environment }}');
    const script = scripts(stage('Deploy'));
    const at = (pattern: RegExp): number => script.search(pattern);
    expect(at(/wireAppTriggers=false/)).toBeGreaterThan(-1);
    expect(at(/previous\.zip/)).toBeGreaterThan(at(/wireAppTriggers=false/));
    expect(at(/config-zip/)).toBeGreaterThan(at(/previous\.zip/));
    expect(at(/wireAppTriggers=true/)).toBeGreaterThan(at(/config-zip/));
    expect(steps(stage('Deploy')).some((s) => s.task === 'PublishPipelineArtifact@1' && s.inputs?.artifact === 'previous')).toBe(true);
  });

  it('smoke-tests /api/health, then /api/ready with a function key, and rolls back to the previous package', () => {
    const smoke = scripts(stage('Smoke'));
    expect(smoke.search(/\/api\/health/)).toBeLessThan(smoke.search(/\/api\/ready/));
    expect(smoke).toMatch(/x-functions-key: \$key/);
    expect(smoke).toMatch(/issecret=true/);
    const rollback = scripts(stage('Rollback'));
    expect(steps(stage('Rollback')).some((s) => s.download === 'current' && s.artifact === 'previous')).toBe(true);
    expect(rollback).toMatch(/config-zip[^]*previous\/previous\.zip/);
    expect(rollback).toMatch(/exit 1\s*$/);
  });

  it('hard-codes no service connection, resource group or estate: they are parameters, and the estates are the examples', async () => {
    const names = pipeline.parameters.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['estate', 'serviceConnection', 'resourceGroup', 'environment']));
    expect(pipeline.parameters.find((p) => p.name === 'estate')?.values).toEqual(await exampleEstates());
    for (const s of pipeline.stages) {
      for (const step of steps(s).filter((st) => st.task === 'AzureCLI@2')) expect(step.inputs?.azureSubscription).toBe('${{ parameters.serviceConnection }}');
    }
    const withoutParameterBlock = text.slice(text.indexOf('\ntrigger:'));
    expect(withoutParameterBlock).not.toMatch(/rg-ops-autopilot|xshopai|[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(withoutParameterBlock.match(/--resource-group "\$rg"|--resource-group '\$\{\{ parameters\.resourceGroup \}\}'/g)?.length).toBeGreaterThan(5);
  });
});
