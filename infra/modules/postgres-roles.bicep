// The custom PostgreSQL roles and the dedicated drill resource group.
//
// - "operator": read, update (which includes the admin password reset of a rotation), restart,
//   and point-in-time restore (a restore creates a new server, so it is assigned on the
//   resource group of each server the estate names). No delete.
// - "drill": the same, plus delete, and assignable ONLY to the drill resource group: restore
//   drills create a throwaway server there and remove it afterwards. Because its assignable
//   scope is that one group, the delete right cannot be granted anywhere else by mistake.
targetScope = 'subscription'

@description('Estate name; custom role names are unique per tenant, so they carry it.')
param estate string

@description('Location of the drill resource group.')
param location string

@description('Name of the dedicated resource group that restore drills create their servers in.')
param drillResourceGroupName string

@description('ARM ids of the resource groups of the PostgreSQL servers the estate names.')
param serverResourceGroupIds string[]

@description('GUID of the operator role definition.')
param operatorRoleGuid string

@description('GUID of the drill role definition.')
param drillRoleGuid string

@description('Tags for the drill resource group.')
param tags object

var readAndOperate = [
  'Microsoft.DBforPostgreSQL/flexibleServers/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/*/read'
  'Microsoft.DBforPostgreSQL/flexibleServers/write'
  'Microsoft.DBforPostgreSQL/flexibleServers/restart/action'
  'Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read'
  'Microsoft.DBforPostgreSQL/locations/operationResults/read'
  'Microsoft.Resources/subscriptions/resourceGroups/read'
]

resource drillGroup 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: drillResourceGroupName
  location: location
  tags: tags
}

resource operator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: operatorRoleGuid
  properties: {
    roleName: 'Ops Autopilot PostgreSQL operator (${estate})'
    description: 'Read, update, restart and point-in-time restore of PostgreSQL flexible servers. No delete.'
    type: 'CustomRole'
    permissions: [
      {
        actions: readAndOperate
        notActions: []
      }
    ]
    assignableScopes: union(serverResourceGroupIds, [drillGroup.id])
  }
}

resource drill 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: drillRoleGuid
  properties: {
    roleName: 'Ops Autopilot PostgreSQL drill (${estate})'
    description: 'Restore drills: create, read and delete PostgreSQL flexible servers, only in the dedicated drill resource group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(readAndOperate, ['Microsoft.DBforPostgreSQL/flexibleServers/delete'])
        notActions: []
      }
    ]
    assignableScopes: [drillGroup.id]
  }
}

@description('ARM id of the drill resource group.')
output drillResourceGroupId string = drillGroup.id
