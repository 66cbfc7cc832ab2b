// Ops Autopilot: the Function App and everything it needs, for one estate.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/params/<estate>.bicepparam
//
// The parameter files are generated from the estate configuration (`npm run infra:params`), so
// every role assignment, alert rule and Event Grid subscription follows from what the estate
// names. `npm run infra:build` compiles this file to infra/main.json (committed) with the Bicep
// CLI and fails on any linter warning; the tests in test/product/infra read main.json.
//
// Least privilege: the app runs as one user-assigned identity. Every role it holds is the
// narrowest built-in role (or the custom PostgreSQL roles) for what a runbook does, scoped to
// the resource, resource group or (Reader only) subscription the estate names. It never holds
// Owner, Contributor, User Access Administrator or Role Based Access Control Administrator.
targetScope = 'resourceGroup'

import {
  containerAppAlertTarget
  containerAppGroup
  roleAssignmentSpec
  webAppAlertTarget
} from 'types.bicep'

metadata description = 'Ops Autopilot Function App (Flex Consumption, Node 22) with least-privilege access to one estate.'

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

@description('Estate name, as in the estate configuration (`estate`).')
@minLength(1)
@maxLength(40)
param estate string

@description('Location of the app and its resources.')
param location string = resourceGroup().location

@description('Path of the estate configuration inside the deployed package, relative to the app root (OPS_AUTOPILOT_CONFIG_FILE).')
param configFile string

@description('Role assignments of the app\'s identity on what the estate names (generated from the estate configuration).')
param roleAssignments roleAssignmentSpec[] = []

@description('Web apps the alert rules watch and remediation acts on (Website Contributor on the app, Web Plan Contributor on its plan).')
param webApps webAppAlertTarget[] = []

@description('Container apps the alert rules watch.')
param containerApps containerAppAlertTarget[] = []

@description('ARM ids of the PostgreSQL flexible servers the estate names; the custom operator role is assigned on their resource groups.')
param postgresServerIds string[] = []

@description('Name of the dedicated resource group of restore drills (created when the estate names a PostgreSQL server). The drill role, the only one with a delete right, is assignable there alone.')
param drillResourceGroupName string = 'rg-${estate}-ops-autopilot-drills'

@description('Key Vaults whose SecretNearExpiry and SecretExpired events reach the Event Grid trigger.')
param keyVaultEventSources string[] = []

@description('Web apps whose SlotSwapCompleted and SlotSwapFailed events reach the Event Grid trigger.')
param webAppEventSources string[] = []

@description('Resource groups whose container app writes (ResourceWriteSuccess) reach the Event Grid trigger.')
param containerAppEventSources containerAppGroup[] = []

@description('Create the action group, the alert rules and the Event Grid subscriptions. They call the app\'s functions, which exist only once the package is deployed: the first deployment of a new app passes false, deploys the package, then deploys again with true.')
param wireAppTriggers bool = true

@description('Durable Functions task hub (DURABLE_TASK_HUB_NAME): letters and digits, 3 to 45, starting with a letter.')
@minLength(3)
@maxLength(45)
param taskHubName string = 'opsautopilot'

@description('Global remediation kill switch (OPS_AUTOPILOT_KILL_SWITCH): on stops all remediation.')
@allowed([
  'on'
  'off'
])
param killSwitch string = 'off'

@description('Six-field NCRONTAB schedules (UTC) of the timer functions; the defaults are the code\'s.')
param schedules {
  BACKUP_VERIFY_SCHEDULE: string
  KEYVAULT_BACKUP_SCHEDULE: string
  REVISION_CLEANUP_SCHEDULE: string
  IMAGE_PURGE_SCHEDULE: string
  SECRET_EXPIRY_SCHEDULE: string
  RESTORE_DRILL_SCHEDULE: string
  DRILL_SWEEPER_SCHEDULE: string
  ROTATION_SCHEDULE: string
} = {
  BACKUP_VERIFY_SCHEDULE: '0 0 6 * * *'
  KEYVAULT_BACKUP_SCHEDULE: '0 30 2 * * *'
  REVISION_CLEANUP_SCHEDULE: '0 0 3 * * *'
  IMAGE_PURGE_SCHEDULE: '0 0 4 * * 0'
  SECRET_EXPIRY_SCHEDULE: '0 0 7 * * *'
  RESTORE_DRILL_SCHEDULE: '0 30 3 * * 0'
  DRILL_SWEEPER_SCHEDULE: '0 0 * * * *'
  ROTATION_SCHEDULE: '0 0 5 * * *'
}

@description('Flex Consumption: largest number of instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of each instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days the app\'s Log Analytics workspace keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Tags of every resource the template creates.')
param tags object = {}

// ------------------------------------------------------------------------------------------
// Names and constants
// ------------------------------------------------------------------------------------------

var suffix = take(uniqueString(subscription().id, resourceGroup().id, estate), 8)
var allTags = union(tags, { 'ops-autopilot-estate': estate })
var appName = 'func-opsap-${estate}-${suffix}'
var storageName = 'stopsap${take(uniqueString(subscription().id, resourceGroup().id, estate), 13)}'
var deploymentContainer = 'app-package'
var runRecordsContainer = 'autopilot-runs'
var keyVaultBackupsContainer = 'keyvault-backups'
var deadLetterContainer = 'eventgrid-deadletter'
var tables = [
  'guardrails'
  'drillhistory'
  'rotations'
]

// Built-in role definitions, in one place. Owner, Contributor, User Access Administrator and
// Role Based Access Control Administrator are deliberately absent (a test checks main.json).
var builtInRoles = {
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  WebsiteContributor: 'de139f84-1756-47ae-9be6-808fbbe84772'
  WebPlanContributor: '2cc479cb-7b4d-49a8-b449-8c00fd0f0a4b'
  ContainerAppsContributor: '358470bc-b998-42bd-ab17-a7e34c199c0f'
  AcrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  AcrDelete: 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'
  ContainerRegistryRepositoryContributor: '2efddaa5-3f1f-4df3-97df-af3f13818f4c'
  ContainerRegistryRepositoryCatalogLister: 'bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7'
  KeyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2'
  KeyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  StorageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  StorageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  StorageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  StorageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  StorageAccountKeyOperator: '81a9662b-bebf-436f-a333-f67b29880f12'
  MonitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}
var hasPostgres = !empty(postgresServerIds)
var postgresOperatorRole = guid(subscription().id, estate, 'ops-autopilot-postgres-operator')
var postgresDrillRole = guid(subscription().id, estate, 'ops-autopilot-postgres-drill')
var roleGuids = union(builtInRoles, { PostgresOperator: postgresOperatorRole })
var postgresServerGroups = union(map(postgresServerIds, id => toLower(join(take(split(id, '/'), 5), '/'))), [])

// ------------------------------------------------------------------------------------------
// Identity, storage, monitoring
// ------------------------------------------------------------------------------------------

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-opsap-${estate}-${suffix}'
  location: location
  tags: allTags
}

// Event Grid system topics write dead letters with an identity of their own, so that the app's
// identity is never shared with another service.
resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: 'id-opsap-eg-${estate}-${suffix}'
  location: location
  tags: allTags
}

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: storageName
  location: location
  tags: allTags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [
  for name in [deploymentContainer, runRecordsContainer, keyVaultBackupsContainer, deadLetterContainer]: {
    parent: blobService
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = {
  parent: blobService
  name: deadLetterContainer
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: storage
  name: 'default'
}

resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = [
  for name in tables: {
    parent: tableService
    name: name
  }
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-02-01' = {
  name: 'log-opsap-${estate}-${suffix}'
  location: location
  tags: allTags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-opsap-${estate}-${suffix}'
  location: location
  tags: allTags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Telemetry only with an Entra token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING below).
    DisableLocalAuth: true
  }
}

// ------------------------------------------------------------------------------------------
// The Function App: Flex Consumption, Linux, Node 22
// ------------------------------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: 'plan-opsap-${estate}-${suffix}'
  location: location
  tags: allTags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  // azd finds the app of service `api` (azure.yaml) by this tag.
  tags: union(allTags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Identity-based host storage: no connection string, no shared key.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identity.properties.clientId }
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.properties.clientId};Authorization=AAD' }
        { name: 'OPS_AUTOPILOT_CONFIG_FILE', value: configFile }
        { name: 'OPS_AUTOPILOT_KILL_SWITCH', value: killSwitch }
        { name: 'DURABLE_TASK_HUB_NAME', value: taskHubName }
        { name: 'BACKUP_VERIFY_SCHEDULE', value: schedules.BACKUP_VERIFY_SCHEDULE }
        { name: 'KEYVAULT_BACKUP_SCHEDULE', value: schedules.KEYVAULT_BACKUP_SCHEDULE }
        { name: 'REVISION_CLEANUP_SCHEDULE', value: schedules.REVISION_CLEANUP_SCHEDULE }
        { name: 'IMAGE_PURGE_SCHEDULE', value: schedules.IMAGE_PURGE_SCHEDULE }
        { name: 'SECRET_EXPIRY_SCHEDULE', value: schedules.SECRET_EXPIRY_SCHEDULE }
        { name: 'RESTORE_DRILL_SCHEDULE', value: schedules.RESTORE_DRILL_SCHEDULE }
        { name: 'DRILL_SWEEPER_SCHEDULE', value: schedules.DRILL_SWEEPER_SCHEDULE }
        { name: 'ROTATION_SCHEDULE', value: schedules.ROTATION_SCHEDULE }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
  dependsOn: [
    hostStorageRoles
  ]
}

// No FTP and no basic-auth deployment: the package goes in with Entra credentials.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

// ------------------------------------------------------------------------------------------
// The app's own resources: host storage (blob leases, queues and tables of Durable Functions,
// the deployment package), run records, state tables, telemetry
// ------------------------------------------------------------------------------------------

var hostStorageRoleNames = [
  'StorageBlobDataOwner'
  'StorageQueueDataContributor'
  'StorageTableDataContributor'
]

resource hostStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in hostStorageRoleNames: {
    name: guid(storage.id, identity.id, builtInRoles[role])
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles[role])
      principalId: identity.properties.principalId
      principalType: 'ServicePrincipal'
      description: 'Ops Autopilot host storage (AzureWebJobsStorage, Durable Functions, deployment package, run records, state tables)'
    }
  }
]

resource telemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, builtInRoles.MonitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.MonitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Ops Autopilot telemetry with Entra authentication (local auth is disabled)'
  }
}

resource deadLetterRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetter.id, eventGridIdentity.id, builtInRoles.StorageBlobDataContributor)
  scope: deadLetter
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.StorageBlobDataContributor)
    principalId: eventGridIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid dead letters of Ops Autopilot'
  }
  dependsOn: [
    containers
  ]
}

// ------------------------------------------------------------------------------------------
// Least-privilege access to what the estate names
// ------------------------------------------------------------------------------------------

module postgresRoles 'modules/postgres-roles.bicep' = if (hasPostgres) {
  name: 'opsap-postgres-roles-${suffix}'
  scope: subscription()
  params: {
    estate: estate
    location: location
    drillResourceGroupName: drillResourceGroupName
    serverResourceGroupIds: postgresServerGroups
    operatorRoleGuid: postgresOperatorRole
    drillRoleGuid: postgresDrillRole
    tags: allTags
  }
}

module drillRole 'modules/estate-role.bicep' = if (hasPostgres) {
  name: 'opsap-drill-role-${suffix}'
  scope: resourceGroup(drillResourceGroupName)
  params: {
    scopeId: '${subscription().id}/resourceGroups/${drillResourceGroupName}'
    roleDefinitionGuid: postgresDrillRole
    principalId: identity.properties.principalId
    principalResourceId: identity.id
    reason: 'Restore drills: throwaway PostgreSQL servers in the drill resource group only'
  }
  dependsOn: [
    postgresRoles
  ]
}

var scopedAssignments = filter(roleAssignments, a => length(split(a.scope, '/')) > 3)
var subscriptionAssignments = filter(roleAssignments, a => length(split(a.scope, '/')) == 3)

module estateRoles 'modules/estate-role.bicep' = [
  for a in scopedAssignments: {
    name: 'opsap-role-${uniqueString(toLower(a.scope), a.role)}'
    scope: resourceGroup(split(a.scope, '/')[2], split(a.scope, '/')[4])
    params: {
      scopeId: a.scope
      roleDefinitionGuid: roleGuids[a.role]
      principalId: identity.properties.principalId
      principalResourceId: identity.id
      reason: a.reason
    }
    dependsOn: [
      postgresRoles
    ]
  }
]

module subscriptionRoles 'modules/subscription-role.bicep' = [
  for a in subscriptionAssignments: {
    name: 'opsap-role-${uniqueString(toLower(a.scope), a.role)}'
    scope: subscription(split(a.scope, '/')[2])
    params: {
      roleDefinitionGuid: roleGuids[a.role]
      principalId: identity.properties.principalId
      principalResourceId: identity.id
      reason: a.reason
    }
  }
]

// Web apps: the plan is read from the site, then Web Plan Contributor is assigned on it
// (scaling writes the plan; Website Contributor covers the site only).
resource webAppSites 'Microsoft.Web/sites@2025-03-01' existing = [
  for w in webApps: {
    name: last(split(w.id, '/'))
    scope: resourceGroup(split(w.id, '/')[2], split(w.id, '/')[4])
  }
]

module webAppRoles 'modules/estate-role.bicep' = [
  for w in webApps: {
    name: 'opsap-role-${uniqueString(toLower(w.id), 'WebsiteContributor')}'
    scope: resourceGroup(split(w.id, '/')[2], split(w.id, '/')[4])
    params: {
      scopeId: w.id
      roleDefinitionGuid: builtInRoles.WebsiteContributor
      principalId: identity.properties.principalId
      principalResourceId: identity.id
      reason: 'Alert remediation of a web app the estate names: restart, slot swap'
    }
  }
]

module webPlanRoles 'modules/plan-role.bicep' = [
  for (w, i) in webApps: {
    name: 'opsap-plan-${uniqueString(toLower(w.id))}'
    scope: resourceGroup(split(w.id, '/')[2], split(w.id, '/')[4])
    params: {
      // The plan is known only once the site is read; what-if cannot predict this one assignment.
      #disable-next-line what-if-short-circuiting
      planId: webAppSites[i].properties.serverFarmId
      roleDefinitionGuid: builtInRoles.WebPlanContributor
      principalId: identity.properties.principalId
      principalResourceId: identity.id
      reason: 'Alert remediation of a web app the estate names: scale its plan up or out'
    }
  }
]

module containerAppRoles 'modules/estate-role.bicep' = [
  for c in containerApps: {
    name: 'opsap-role-${uniqueString(toLower(c.id), 'ContainerAppsContributor')}'
    scope: resourceGroup(split(c.id, '/')[2], split(c.id, '/')[4])
    params: {
      scopeId: c.id
      roleDefinitionGuid: builtInRoles.ContainerAppsContributor
      principalId: identity.properties.principalId
      principalResourceId: identity.id
      reason: 'Revision cleanup and alert remediation of a container app the estate names'
    }
  }
]

// ------------------------------------------------------------------------------------------
// Alerts: rules at the seeds' thresholds, one action group calling POST /api/alerts
// ------------------------------------------------------------------------------------------

// The action group calls with a key of the `alerts` function itself (its default function
// key), not a host key: the key opens that one route and nothing else.
resource alertsFunction 'Microsoft.Web/sites/functions@2025-03-01' existing = {
  parent: app
  name: 'alerts'
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (wireAppTriggers) {
  name: 'ag-opsap-${estate}-${suffix}'
  location: 'global'
  tags: allTags
  properties: {
    groupShortName: 'opsautopilot'
    enabled: true
    webhookReceivers: [
      {
        name: 'ops-autopilot-alerts'
        serviceUri: 'https://${app.properties.defaultHostName}/api/alerts?code=${alertsFunction.listKeys().default}'
        useCommonAlertSchema: true
        useAadAuth: false
      }
    ]
  }
}

module webAppDiagnostics 'modules/diagnostics.bicep' = [
  for w in webApps: if (wireAppTriggers) {
    name: 'opsap-diag-${uniqueString(toLower(w.id))}'
    scope: resourceGroup(split(w.id, '/')[2], split(w.id, '/')[4])
    params: {
      targetId: w.id
      workspaceId: workspace.id
    }
  }
]

module containerAppDiagnostics 'modules/diagnostics.bicep' = [
  for c in containerApps: if (wireAppTriggers) {
    name: 'opsap-diag-${uniqueString(toLower(c.id))}'
    scope: resourceGroup(split(c.id, '/')[2], split(c.id, '/')[4])
    params: {
      targetId: c.id
      workspaceId: workspace.id
    }
  }
]

module webAppAlerts 'modules/web-app-alerts.bicep' = [
  for (w, i) in webApps: if (wireAppTriggers) {
    name: 'opsap-alerts-${uniqueString(toLower(w.id))}'
    params: {
      target: w
      planId: webAppSites[i].properties.serverFarmId
      actionGroupId: actionGroup.id
      location: location
      tags: allTags
    }
  }
]

module containerAppAlerts 'modules/container-app-alerts.bicep' = [
  for c in containerApps: if (wireAppTriggers) {
    name: 'opsap-alerts-${uniqueString(toLower(c.id))}'
    params: {
      target: c
      actionGroupId: actionGroup.id
      location: location
      tags: allTags
    }
  }
]

// ------------------------------------------------------------------------------------------
// Event Grid: system topics of the estate's vaults, web apps and container app groups,
// delivered to the Event Grid trigger with retries and dead-lettering
// ------------------------------------------------------------------------------------------

var eventGridFunctionId = '${app.id}/functions/eventGrid'

resource keyVaults 'Microsoft.KeyVault/vaults@2025-05-01' existing = [
  for id in keyVaultEventSources: {
    name: last(split(id, '/'))
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  }
]

module keyVaultEvents 'modules/event-source.bicep' = [
  for (id, i) in keyVaultEventSources: if (wireAppTriggers) {
    name: 'opsap-events-${uniqueString(toLower(id))}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      sourceId: id
      topicType: 'Microsoft.KeyVault.vaults'
      location: keyVaults[i].location
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      functionResourceId: eventGridFunctionId
      deadLetterIdentityId: eventGridIdentity.id
      deadLetterStorageId: storage.id
      deadLetterContainer: deadLetterContainer
      tags: allTags
    }
    dependsOn: [
      deadLetterRole
    ]
  }
]

resource swapSites 'Microsoft.Web/sites@2025-03-01' existing = [
  for id in webAppEventSources: {
    name: last(split(id, '/'))
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  }
]

module webAppEvents 'modules/event-source.bicep' = [
  for (id, i) in webAppEventSources: if (wireAppTriggers) {
    name: 'opsap-events-${uniqueString(toLower(id))}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      sourceId: id
      topicType: 'Microsoft.Web.Sites'
      location: swapSites[i].location
      includedEventTypes: [
        'Microsoft.Web.SlotSwapCompleted'
        'Microsoft.Web.SlotSwapFailed'
      ]
      functionResourceId: eventGridFunctionId
      deadLetterIdentityId: eventGridIdentity.id
      deadLetterStorageId: storage.id
      deadLetterContainer: deadLetterContainer
      tags: allTags
    }
    dependsOn: [
      deadLetterRole
    ]
  }
]

module containerAppEvents 'modules/event-source.bicep' = [
  for g in containerAppEventSources: if (wireAppTriggers) {
    name: 'opsap-events-${uniqueString(toLower(g.resourceGroupId))}'
    scope: resourceGroup(split(g.resourceGroupId, '/')[2], split(g.resourceGroupId, '/')[4])
    params: {
      sourceId: g.resourceGroupId
      topicType: 'Microsoft.Resources.ResourceGroups'
      location: 'global'
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
      ]
      subjectPrefixes: g.containerAppIds
      operationNames: [
        'Microsoft.App/containerApps/write'
      ]
      functionResourceId: eventGridFunctionId
      deadLetterIdentityId: eventGridIdentity.id
      deadLetterStorageId: storage.id
      deadLetterContainer: deadLetterContainer
      tags: allTags
    }
    dependsOn: [
      deadLetterRole
    ]
  }
]

// ------------------------------------------------------------------------------------------
// Outputs
// ------------------------------------------------------------------------------------------

@description('Name of the Function App.')
output appName string = app.name

@description('Base URL of the Function App.')
output appUrl string = 'https://${app.properties.defaultHostName}'

@description('Client id of the app\'s user-assigned identity: the estate configuration\'s azure.managedIdentityClientId.')
output identityClientId string = identity.properties.clientId

@description('ARM id of the app\'s storage account, for the estate configuration\'s runRecords.storageAccountId.')
output storageAccountId string = storage.id

@description('Blob container the deployment package goes to.')
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'

@description('Container apps without an Application Insights component: their 5xx and p95 rules are not created.')
output alertRulesWithoutTelemetry string[] = map(filter(containerApps, c => empty(c.?applicationInsightsId ?? '')), c => c.id)

@description('ARM id of the drill resource group, empty when the estate names no PostgreSQL server.')
output drillResourceGroupId string = hasPostgres ? '${subscription().id}/resourceGroups/${drillResourceGroupName}' : ''
