// Alert rules of one web app, at the thresholds of seed 004 (health, 5xx rate, p95) and seed
// 000 (plan CPU and memory). Every rule fires the action group that calls the app's
// POST /api/alerts with the common alert schema. The log rules query the app's own
// AppServiceHTTPLogs (sent to the workspace by diagnostics.bicep), scoped to the app, so a
// rule only ever sees that app's requests.
import { webAppAlertTarget, webAppThresholds } from '../types.bicep'

@description('The web app and its thresholds.')
param target webAppAlertTarget

@description('ARM id of its App Service plan (read from the app at deployment time).')
param planId string

@description('ARM id of the action group that calls POST /api/alerts.')
param actionGroupId string

@description('Location of the log alert rules.')
param location string

@description('Tags of the rules.')
param tags object

@description('Thresholds when the target gives none: seeds 004 and 000.')
param defaults webAppThresholds = {
  healthFailingMinutes: 2
  http5xxPercent: 5
  p95Milliseconds: 1000
  cpuPercent: 80
  memoryPercent: 80
}

var thresholds = target.?thresholds ?? defaults
var appName = last(split(target.id, '/'))
// Alert rule names: unique per app in this resource group, readable in the portal.
var prefix = 'opsap-${appName}-${take(uniqueString(toLower(target.id)), 6)}'

resource health 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${prefix}-health'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: health check failing for more than ${thresholds.healthFailingMinutes} min'
    description: 'Every request to ${target.healthPath} in a minute answered something other than ${target.expectStatus}, for ${thresholds.healthFailingMinutes + 1} consecutive minutes (seed 004: health check fails for > ${thresholds.healthFailingMinutes} minutes).'
    severity: 1
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT1M'
    criteria: {
      allOf: [
        {
          query: 'AppServiceHTTPLogs | where CsUriStem =~ \'${target.healthPath}\' | summarize healthy = countif(ScStatus == ${target.expectStatus}), probes = count() | extend unhealthy = iff(probes > 0 and healthy == 0, 1, 0)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'unhealthy'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: thresholds.healthFailingMinutes + 1
            minFailingPeriodsToAlert: thresholds.healthFailingMinutes + 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroupId]
    }
  }
}

resource errors 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${prefix}-5xx'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: 5xx above ${thresholds.http5xxPercent} % in 5 min'
    description: 'Share of requests answered 5xx over 5 minutes (seed 004: > 5 % 5xx errors in a 5-minute window).'
    severity: 1
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'AppServiceHTTPLogs | summarize requests = count(), failed = countif(ScStatus >= 500) | extend percent5xx = iff(requests == 0, 0.0, 100.0 * failed / requests)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'percent5xx'
          operator: 'GreaterThan'
          threshold: thresholds.http5xxPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroupId]
    }
  }
}

resource latency 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${prefix}-p95'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: p95 above ${thresholds.p95Milliseconds} ms for 5 min'
    description: '95th percentile of TimeTaken over 5 minutes (seed 004: P95 > 1000 ms for 5 minutes).'
    severity: 2
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'AppServiceHTTPLogs | summarize p95ms = percentile(TimeTaken, 95)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'p95ms'
          operator: 'GreaterThan'
          threshold: thresholds.p95Milliseconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [actionGroupId]
    }
  }
}

resource cpu 'Microsoft.Insights/metricAlerts@2026-01-01' = {
  name: '${prefix}-plan-cpu'
  location: 'global'
  tags: tags
  properties: {
    description: '${appName}: App Service plan CPU above ${thresholds.cpuPercent} % for 15 min (seed 000 and 001: CPU > 80 % sustained).'
    severity: 2
    enabled: true
    scopes: [planId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'cpu'
          metricNamespace: 'Microsoft.Web/serverfarms'
          metricName: 'CpuPercentage'
          timeAggregation: 'Average'
          operator: 'GreaterThan'
          threshold: thresholds.cpuPercent
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}

resource memory 'Microsoft.Insights/metricAlerts@2026-01-01' = {
  name: '${prefix}-plan-memory'
  location: 'global'
  tags: tags
  properties: {
    description: '${appName}: App Service plan memory above ${thresholds.memoryPercent} % for 15 min (seed 000 and 001: memory > 80 % sustained).'
    severity: 2
    enabled: true
    scopes: [planId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'memory'
          metricNamespace: 'Microsoft.Web/serverfarms'
          metricName: 'MemoryPercentage'
          timeAggregation: 'Average'
          operator: 'GreaterThan'
          threshold: thresholds.memoryPercent
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}
