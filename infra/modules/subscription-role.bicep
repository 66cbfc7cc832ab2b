// One role assignment for the app's identity at subscription scope. Only Reader is ever given
// here: image-purge must read every container app, job and web app in a registry's
// subscriptions to prove an image unused, and a missing read makes it refuse (fail closed).
targetScope = 'subscription'

@description('Role definition GUID.')
param roleDefinitionGuid string

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('ARM id of that identity. It names the assignment, guid(scope, principal, role): unlike the object id it is known before the deployment starts, so what-if can predict the assignment.')
param principalResourceId string

@description('Why the app holds this role.')
param reason string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, toLower(principalResourceId), roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: reason
  }
}
