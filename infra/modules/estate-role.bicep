// One role assignment for the app's identity, scoped to a resource group or to one top-level
// resource in it, as the estate configuration names them. Deployed into the resource group of
// the scope. A role assignment's scope must be a resource symbol, so each supported resource
// type has its own `existing` reference; only the one matching `scopeId` is used.
targetScope = 'resourceGroup'

@description('ARM id of the resource group, or of a top-level resource in it, that the assignment is scoped to.')
param scopeId string

@description('Role definition GUID (built-in or the template\'s custom role).')
param roleDefinitionGuid string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('ARM id of that identity. It names the assignment, guid(scope, principal, role): unlike the object id it is known before the deployment starts, so what-if can predict the assignment.')
param principalResourceId string

@description('Why the app holds this role.')
param reason string

var segments = split(scopeId, '/')
var isResource = length(segments) == 9
var scopeType = isResource ? toLower('${segments[6]}/${segments[7]}') : 'resourcegroup'
var scopeName = isResource ? segments[8] : ''
// The name is guid(scope, principal, role): stable across deployments, unique per triple, so a
// re-deployment updates rather than duplicates and two roles on one scope never collide.
var assignmentName = guid(toLower(scopeId), toLower(principalResourceId), roleDefinitionGuid)
var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)

resource site 'Microsoft.Web/sites@2025-03-01' existing = if (scopeType == 'microsoft.web/sites') {
  name: scopeName
}
resource plan 'Microsoft.Web/serverfarms@2025-03-01' existing = if (scopeType == 'microsoft.web/serverfarms') {
  name: scopeName
}
resource containerApp 'Microsoft.App/containerApps@2025-01-01' existing = if (scopeType == 'microsoft.app/containerapps') {
  name: scopeName
}
resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = if (scopeType == 'microsoft.containerregistry/registries') {
  name: scopeName
}
resource vault 'Microsoft.KeyVault/vaults@2025-05-01' existing = if (scopeType == 'microsoft.keyvault/vaults') {
  name: scopeName
}
resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = if (scopeType == 'microsoft.storage/storageaccounts') {
  name: scopeName
}
resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2025-08-01' existing = if (scopeType == 'microsoft.dbforpostgresql/flexibleservers') {
  name: scopeName
}

var properties = {
  roleDefinitionId: roleDefinitionId
  principalId: principalId
  principalType: 'ServicePrincipal'
  description: reason
}

resource onResourceGroup 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'resourcegroup') {
  name: assignmentName
  properties: properties
}
resource onSite 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.web/sites') {
  name: assignmentName
  scope: site
  properties: properties
}
resource onPlan 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.web/serverfarms') {
  name: assignmentName
  scope: plan
  properties: properties
}
resource onContainerApp 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.app/containerapps') {
  name: assignmentName
  scope: containerApp
  properties: properties
}
resource onRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.containerregistry/registries') {
  name: assignmentName
  scope: registry
  properties: properties
}
resource onVault 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.keyvault/vaults') {
  name: assignmentName
  scope: vault
  properties: properties
}
resource onStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.storage/storageaccounts') {
  name: assignmentName
  scope: storage
  properties: properties
}
resource onPostgres 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scopeType == 'microsoft.dbforpostgresql/flexibleservers') {
  name: assignmentName
  scope: postgres
  properties: properties
}
