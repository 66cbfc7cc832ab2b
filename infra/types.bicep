// Types shared by infra/main.bicep and its parameter files. The parameter files are written by
// `npm run infra:params` from the estate configuration (scripts/infra-params.ts).

@export()
@description('A built-in or custom role the app may hold. The role definition ids live in main.bicep, in one place.')
type roleName =
  | 'Reader'
  | 'WebsiteContributor'
  | 'WebPlanContributor'
  | 'ContainerAppsContributor'
  | 'AcrPull'
  | 'AcrDelete'
  | 'ContainerRegistryRepositoryContributor'
  | 'ContainerRegistryRepositoryCatalogLister'
  | 'KeyVaultReader'
  | 'KeyVaultSecretsOfficer'
  | 'StorageBlobDataContributor'
  | 'StorageTableDataContributor'
  | 'StorageAccountKeyOperator'
  | 'PostgresOperator'

@export()
@description('One role assignment for the app\'s identity: the role, and the ARM id of the subscription, resource group or resource it is scoped to.')
type roleAssignmentSpec = {
  @description('ARM id of a subscription, a resource group or a top-level resource named by the estate.')
  scope: string
  role: roleName
  @description('Why the app needs it (the estate config field that asks for it).')
  reason: string
}

@export()
@description('Thresholds of the alert rules of one web app (seed 004 and 000 defaults).')
type webAppThresholds = {
  @description('Health check failing for longer than this many minutes (seed 004: 2).')
  healthFailingMinutes: int
  @description('5xx responses, percent of all requests over 5 minutes (seed 004: 5).')
  http5xxPercent: int
  @description('95th percentile response time over 5 minutes, milliseconds (seed 004: 1000).')
  p95Milliseconds: int
  @description('App Service plan CPU, percent, sustained over 15 minutes (seed 000: 80).')
  cpuPercent: int
  @description('App Service plan memory, percent, sustained over 15 minutes (seed 000: 80).')
  memoryPercent: int
}

@export()
@description('Thresholds of the alert rules of one container app (seed 001 defaults).')
type containerAppThresholds = {
  @description('5xx responses, percent of all requests over 5 minutes (seed 001: 1).')
  http5xxPercent: int
  @description('95th percentile response time over 5 minutes, milliseconds (seed 001: 2000).')
  p95Milliseconds: int
  @description('Replica restarts in 10 minutes (seed 001: more than 2).')
  restartsIn10Minutes: int
  @description('CPU, percent of the limit, sustained over 15 minutes (seed 001: 80).')
  cpuPercent: int
  @description('Memory, percent of the limit, sustained over 15 minutes (seed 001: 80).')
  memoryPercent: int
}

@export()
@description('A web app the alert rules watch.')
type webAppAlertTarget = {
  @description('ARM id of the Microsoft.Web/sites resource.')
  id: string
  @description('Path of its health endpoint (the estate config\'s targets[].health.path).')
  healthPath: string
  @description('Status the health endpoint answers when healthy (targets[].health.expectStatus).')
  expectStatus: int
  thresholds: webAppThresholds?
}

@export()
@description('A container app the alert rules watch.')
type containerAppAlertTarget = {
  @description('ARM id of the Microsoft.App/containerApps resource.')
  id: string
  @description('Application Insights component that receives the app\'s request telemetry; the 5xx and p95 rules need it (Container Apps has no request log of its own).')
  applicationInsightsId: string?
  thresholds: containerAppThresholds?
}

@export()
@description('The container apps of one resource group whose writes (ResourceWriteSuccess) reach the Event Grid trigger.')
type containerAppGroup = {
  @description('ARM id of the resource group.')
  resourceGroupId: string
  @description('ARM ids of the container apps in it that the estate names; events of other resources are filtered out.')
  containerAppIds: string[]
}
