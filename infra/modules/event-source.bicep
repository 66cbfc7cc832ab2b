// One Event Grid system topic and its subscription to the app's Event Grid trigger. Deployed
// into the resource group of the source (a system topic lives beside its source, in the
// source's location; resource-group sources are global).
//
// Delivery: the AzureFunction endpoint (Event Grid validates and calls the function through
// ARM, no key in the template), one event per call, retried for a day, then dead-lettered to a
// blob container of the app's storage account. Shared keys are off there, so the topic writes
// dead letters with its own user-assigned identity (Storage Blob Data Contributor on that one
// container, assigned in main.bicep).
targetScope = 'resourceGroup'

@description('ARM id of the source: a Key Vault, a web app, or a resource group.')
param sourceId string

@description('System topic type: Microsoft.KeyVault.vaults, Microsoft.Web.Sites or Microsoft.Resources.ResourceGroups.')
@allowed([
  'Microsoft.KeyVault.vaults'
  'Microsoft.Web.Sites'
  'Microsoft.Resources.ResourceGroups'
])
param topicType string

@description('Location of the source (global for a resource group).')
param location string

@description('Event types delivered to the trigger.')
param includedEventTypes string[]

@description('For a resource group source: the ARM ids whose events are delivered (subject prefixes); empty means every subject.')
param subjectPrefixes string[] = []

@description('For a resource group source: the ARM operations delivered, e.g. Microsoft.App/containerApps/write.')
param operationNames string[] = []

@description('ARM id of the function that receives the events: <app id>/functions/<name>.')
param functionResourceId string

@description('ARM id of the user-assigned identity the topic writes dead letters with.')
param deadLetterIdentityId string

@description('ARM id of the storage account holding the dead-letter container.')
param deadLetterStorageId string

@description('Dead-letter container.')
param deadLetterContainer string

@description('Tags of the topic.')
param tags object

var sourceName = last(split(sourceId, '/'))

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-opsap-${take(sourceName, 40)}-${take(uniqueString(toLower(sourceId)), 6)}'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${deadLetterIdentityId}': {}
    }
  }
  properties: {
    source: sourceId
    topicType: topicType
  }
}

resource subscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'ops-autopilot'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionResourceId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: includedEventTypes
      enableAdvancedFilteringOnArrays: true
      advancedFilters: concat(
        empty(subjectPrefixes)
          ? []
          : [
              {
                operatorType: 'StringBeginsWith'
                key: 'subject'
                values: subjectPrefixes
              }
            ],
        empty(operationNames)
          ? []
          : [
              {
                operatorType: 'StringIn'
                key: 'data.operationName'
                values: operationNames
              }
            ]
      )
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: deadLetterIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageId
          blobContainerName: deadLetterContainer
        }
      }
    }
  }
}
