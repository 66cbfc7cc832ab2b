// Alert rules of one container app, at the thresholds of seed 001: 5xx above 1 % over 5 min,
// p95 above 2 s, more than 2 restarts in 10 min, CPU or memory above 80 %. Every rule fires
// the action group that calls the app's POST /api/alerts with the common alert schema.
//
// Container Apps keeps no request log of its own, so the 5xx and p95 rules query the request
// telemetry of the Application Insights component the target names; without one they are not
// created (the main template's output `alertRulesWithoutTelemetry` lists such targets).
import { containerAppAlertTarget, containerAppThresholds } from '../types.bicep'

@description('The container app and its thresholds.')
param target containerAppAlertTarget

@description('ARM id of the action group that calls POST /api/alerts.')
param actionGroupId string

@description('Location of the log alert rules.')
param location string

@description('Tags of the rules.')
param tags object

@description('Thresholds when the target gives none: seed 001.')
param defaults containerAppThresholds = {
  http5xxPercent: 1
  p95Milliseconds: 2000
  restartsIn10Minutes: 2
  cpuPercent: 80
  memoryPercent: 80
}

var thresholds = target.?thresholds ?? defaults
var appName = last(split(target.id, '/'))
var prefix = 'opsap-${appName}-${take(uniqueString(toLower(target.id)), 6)}'
var telemetry = target.?applicationInsightsId ?? ''
// App Insights may serve several apps; Container Apps reports the app name as the role name.
var requestsOfApp = 'requests | where cloud_RoleName =~ \'${appName}\''

resource restarts 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = {
  name: '${prefix}-restarts'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: more than ${thresholds.restartsIn10Minutes} restarts in 10 min'
    description: 'Replica restarts (RestartCount, exported to the workspace) over 10 minutes (seed 001: > 2 in 10 min).'
    severity: 1
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: 'AzureMetrics | where MetricName == \'RestartCount\' | summarize restarts = sum(Total)'
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'restarts'
          operator: 'GreaterThan'
          threshold: thresholds.restartsIn10Minutes
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
  name: '${prefix}-cpu'
  location: 'global'
  tags: tags
  properties: {
    description: '${appName}: CPU above ${thresholds.cpuPercent} % of the limit for 15 min (seed 001: CPU > 80 % sustained).'
    severity: 2
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'cpu'
          metricNamespace: 'Microsoft.App/containerApps'
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
  name: '${prefix}-memory'
  location: 'global'
  tags: tags
  properties: {
    description: '${appName}: memory above ${thresholds.memoryPercent} % of the limit for 15 min (seed 001: memory > 80 % sustained).'
    severity: 2
    enabled: true
    scopes: [target.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'memory'
          metricNamespace: 'Microsoft.App/containerApps'
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

resource errors 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = if (!empty(telemetry)) {
  name: '${prefix}-5xx'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: 5xx above ${thresholds.http5xxPercent} % over 5 min'
    description: 'Share of requests answered 5xx over 5 minutes (seed 001: HTTP 5xx rate > 1 % over 5 min).'
    severity: 1
    enabled: true
    scopes: [telemetry]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: '${requestsOfApp} | summarize total = count(), failed = countif(toint(resultCode) >= 500) | extend percent5xx = iff(total == 0, 0.0, 100.0 * failed / total)'
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

resource latency 'Microsoft.Insights/scheduledQueryRules@2026-03-01' = if (!empty(telemetry)) {
  name: '${prefix}-p95'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${appName}: p95 above ${thresholds.p95Milliseconds} ms'
    description: '95th percentile request duration over 5 minutes (seed 001: response latency p95 > 2 s).'
    severity: 2
    enabled: true
    scopes: [telemetry]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: '${requestsOfApp} | summarize p95ms = percentile(duration, 95)'
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
