// Website Contributor on the App Service plan of a web app the estate names: scaling up or out
// writes the plan, not the site. The plan is read from the site at deployment time, so this
// module only forwards it as a parameter to estate-role.bicep, whose scope can then be
// computed from it (a scope must be known when its deployment starts).
targetScope = 'resourceGroup'

@description('ARM id of the App Service plan.')
param planId string

@description('Role definition GUID.')
param roleDefinitionGuid string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('ARM id of that identity. It names the assignment, guid(scope, principal, role): unlike the object id it is known before the deployment starts, so what-if can predict the assignment.')
param principalResourceId string

@description('Why the app holds this role.')
param reason string

module role 'estate-role.bicep' = {
  name: 'plan-${uniqueString(toLower(planId), roleDefinitionGuid)}'
  scope: resourceGroup(split(planId, '/')[2], split(planId, '/')[4])
  params: {
    scopeId: planId
    roleDefinitionGuid: roleDefinitionGuid
    principalId: principalId
    principalResourceId: principalResourceId
    reason: reason
  }
}
