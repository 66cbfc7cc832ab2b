// Sends a watched app's logs and metrics to the autopilot's Log Analytics workspace, so that
// the log alert rules (5xx rate, p95, health, restarts) have something to query. Deployed into
// the app's resource group; the setting is an extension resource of the app itself.
targetScope = 'resourceGroup'

@description('ARM id of the web app or container app.')
param targetId string

@description('ARM id of the Log Analytics workspace that receives the logs.')
param workspaceId string

var segments = split(targetId, '/')
var isWebApp = toLower('${segments[6]}/${segments[7]}') == 'microsoft.web/sites'

resource site 'Microsoft.Web/sites@2025-03-01' existing = if (isWebApp) {
  name: segments[8]
}
resource containerApp 'Microsoft.App/containerApps@2025-01-01' existing = if (!isWebApp) {
  name: segments[8]
}

// The newest diagnosticSettings API is this preview; the linter's choice, 2016-09-01, has no
// Log Analytics destination at all.
#disable-next-line use-recent-api-versions
resource siteDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (isWebApp) {
  name: 'ops-autopilot'
  scope: site
  properties: {
    workspaceId: workspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'AppServiceHTTPLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

#disable-next-line use-recent-api-versions // see above
resource containerAppDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!isWebApp) {
  name: 'ops-autopilot'
  scope: containerApp
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}
