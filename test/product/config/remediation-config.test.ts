/**
 * The remediation blocks of the estate configuration: a good ladder loads with its defaults;
 * unbounded or dangerous rules are refused with the field's path and line (scale without a
 * maximum, scale-up without a SKU ladder, a rung without verification, a verification that can
 * never pass, a restart without a cooldown at any level, an action the kind does not have, an
 * escalation to nobody); `remediation: off` and the levels merge as documented.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { actionParamsSchema, mergeRemediation } from '../../../src/config/remediation-schema.ts';
import { ConfigError } from '../../../src/errors.ts';

const SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
const SITE = `/subscriptions/${SUB}/resourceGroups/rg-k/providers/Microsoft.Web/sites/app-k`;
const APP = `/subscriptions/${SUB}/resourceGroups/rg-k/providers/Microsoft.App/containerApps/ca-k`;
const VAULT = `/subscriptions/${SUB}/resourceGroups/rg-k/providers/Microsoft.KeyVault/vaults/kv-k`;

/** A config whose site target carries `remediation` (indented YAML lines under it). */
function configWith(remediation: string, top = ''): string {
  return `version: 1
estate: kilometers
notifications:
  webhooks:
    - name: oncall
      url: https://example.webhook.office.com/x
${top}targets:
  - id: ${SITE}
    remediation:
${remediation}`;
}

function issues(text: string): string[] {
  try {
    parseConfigText(text, { source: 'test.yaml' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).lines();
  }
  throw new Error('expected the config to be refused');
}

const GOOD = `      cooldown: { minutes: 10 }
      rules:
        - name: api-down
          match: { alertRule: Kilometers API down, signalType: Metric }
          ladder:
            - action: restart
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
            - action: swap-back
              params: { slot: staging, withinMinutes: 120 }
              verify: { consecutive: 3, intervalSeconds: 20, deadlineSeconds: 300 }
          escalate: { notify: [oncall] }
`;

describe('remediation config', () => {
  it('loads a bounded ladder with its defaults', () => {
    const config = parseConfigText(configWith(GOOD), { source: 'test.yaml' });
    const block = config.targets[0]?.remediation;
    expect(block).not.toBe('off');
    if (block === undefined || block === 'off') throw new Error('no block');
    const rule = block.rules[0];
    expect(rule?.ladder.map((rung) => rung.action)).toEqual(['restart', 'swap-back']);
    expect(block.cooldown).toEqual({ minutes: 10, resetAfterHealthyMinutes: 60 });
    expect(actionParamsSchema('swap-back', 'webSite')?.parse(rule?.ladder[1]?.params)).toEqual({ slot: 'staging', withinMinutes: 120 });
  });

  it('refuses a scale-out without a maximum and a scale-up without a SKU ladder, with path and line', () => {
    const lines = issues(
      configWith(`      rules:
        - name: memory
          match: { metricName: MemoryPercentage }
          ladder:
            - action: scale-out
              params: { step: 1 }
              verify: {}
            - action: scale-up
              verify: {}
`),
    );
    expect(lines).toContain('targets[0].remediation.rules[0].ladder[0].params.maxWorkers: expected maxWorkers for scale-out on a webSite (a scale action needs a maximum), found none (line 15)');
    expect(lines).toContain('targets[0].remediation.rules[0].ladder[1].params.skus: expected skus for scale-up on a webSite (scale-up moves along an explicit SKU ladder), found none (line 17)');
  });

  it('refuses a rung without verification and a verification that can never pass', () => {
    const lines = issues(
      configWith(`      cooldown: { minutes: 10 }
      rules:
        - name: down
          match: { alertRule: down }
          ladder:
            - action: restart
            - action: swap-back
              verify: { consecutive: 10, intervalSeconds: 60, deadlineSeconds: 300 }
`),
    );
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[0].ladder[0].verify: expected a mapping, found nothing'))).toBe(true);
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[0].ladder[1].verify.deadlineSeconds: expected a deadline of at least consecutive × intervalSeconds (600 s)'))).toBe(true);
  });

  it('refuses a restart without a cooldown at any level, and accepts one from the top level', () => {
    const rules = `      rules:
        - name: down
          match: { alertRule: down }
          ladder:
            - action: restart
              verify: {}
`;
    expect(issues(configWith(rules))).toEqual([
      expect.stringMatching(/^targets\[0\]\.remediation\.rules\[0\]\.ladder\[0\]\.cooldown: expected a cooldown for restart .*found none: a restart without one can loop \(line \d+\)$/),
    ]);
    const config = parseConfigText(configWith(rules, 'remediation:\n  cooldown: { minutes: 30 }\n'), { source: 'test.yaml' });
    expect(config.remediation?.cooldown?.minutes).toBe(30);
  });

  it('refuses an action the kind does not have, rules on a kind that cannot be remediated, and unknown escalation targets', () => {
    const text = `version: 1
estate: kilometers
remediation:
  escalate: { notify: [pager] }
targets:
  - id: ${SITE}
    remediation:
      rules:
        - name: bad
          match: { severity: Sev1 }
          ladder:
            - action: rollback
              verify: {}
  - id: ${VAULT}
    remediation:
      rules:
        - name: nope
          match: { severity: Sev1 }
          ladder:
            - action: scale-out
              params: { maxWorkers: 2 }
              verify: {}
`;
    const lines = issues(text);
    expect(lines).toContain('remediation.escalate.notify[0]: expected the name of a notifications entry (none defined), found "pager" (line 4)');
    expect(lines).toContain('targets[0].remediation.rules[0].ladder[0].action: expected an action that webSite has (rollback is for containerApp), found "rollback" (line 12)');
    expect(lines).toContain('targets[1].remediation.rules: expected a web app, container app or PostgreSQL server for remediation rules, found keyVault (line 17)');
  });

  it('refuses a rule that matches everything, or alerts and events at once, and duplicate rule names', () => {
    const lines = issues(
      configWith(`      cooldown: { minutes: 5 }
      rules:
        - name: all
          match: {}
          ladder: [{ action: restart, verify: {} }]
        - name: all
          match: { eventType: Microsoft.Web.SlotSwapCompleted, severity: Sev0 }
          ladder: [{ action: swap-back, verify: {} }]
`),
    );
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[0].match: expected at least one of alertRule'))).toBe(true);
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[1].match.eventType: expected either eventType or alert fields, found both'))).toBe(true);
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[1].name: expected a unique rule name, found a duplicate of rules[0]'))).toBe(true);
  });

  it('bounds the container app scale-out and refuses an unknown param', () => {
    const text = `version: 1
estate: kilometers
targets:
  - id: ${APP}
    remediation:
      rules:
        - name: cpu
          match: { metricName: CpuPercentage }
          ladder:
            - action: scale-out
              params: { maxReplicas: 5000, maxWorkers: 3 }
              verify: {}
`;
    const lines = issues(text);
    expect(lines.some((line) => line.startsWith('targets[0].remediation.rules[0].ladder[0].params.maxReplicas: '))).toBe(true);
    expect(lines.some((line) => line.includes('unknown field for scale-out on a containerApp: maxWorkers'))).toBe(true);
  });

  it('takes remediation: off and windows that are well formed only', () => {
    const off = parseConfigText(`version: 1\nestate: kilometers\ntargets:\n  - id: ${SITE}\n    remediation: off\n`, { source: 'test.yaml' });
    expect(off.targets[0]?.remediation).toBe('off');
    const lines = issues(
      configWith(
        '      rules: []\n',
        `remediation:
  maintenanceWindows:
    - name: backwards
      start: 2026-12-02T10:00:00Z
      end: 2026-12-02T09:00:00Z
    - name: both
      start: 2026-12-02T10:00:00Z
      end: 2026-12-02T11:00:00Z
      weekly: { days: [mon], from: "01:00", to: "02:00" }
    - name: bad-time
      weekly: { days: [mon], from: "25:00", to: "02:00" }
`,
      ),
    );
    expect(lines.some((line) => line.startsWith('remediation.maintenanceWindows[0].end: expected end after start'))).toBe(true);
    expect(lines.some((line) => line.startsWith('remediation.maintenanceWindows[1].weekly: expected either start/end or weekly, found both'))).toBe(true);
    expect(lines.some((line) => line.startsWith('remediation.maintenanceWindows[2].weekly.from: expected a time HH:MM (UTC)'))).toBe(true);
  });

  it('merges levels: the closest setting wins, rules add up closest first, windows of every level apply', () => {
    const merged = mergeRemediation([
      { source: 'remediation', value: { mode: 'dry-run', maintenanceWindows: [{ name: 'estate', weekly: { days: ['sun'], from: '01:00', to: '03:00' } }], caps: { perTargetActionPerHour: 2, perTargetActionPerDay: 4, perEstatePerDay: 10 } } },
      { source: 'scopes[0]', value: { rules: [{ name: 'scope-rule', match: { severity: 'Sev1' }, ladder: [{ action: 'restart', params: {}, verify: { consecutive: 1, intervalSeconds: 5, deadlineSeconds: 30 } }] }] } },
      { source: 'targets[1]', value: { mode: 'on', rules: [{ name: 'own', match: { severity: 'Sev0' }, ladder: [{ action: 'restart', params: {}, verify: { consecutive: 1, intervalSeconds: 5, deadlineSeconds: 30 } }] }] } },
    ]);
    expect(merged.mode).toBe('on');
    expect(merged.modeSource).toBe('targets[1]');
    expect(merged.caps.perEstatePerDay).toBe(10);
    expect(merged.rules.map((rule) => [rule.rule.name, rule.path])).toEqual([
      ['own', 'targets[1].remediation.rules[0]'],
      ['scope-rule', 'scopes[0].remediation.rules[0]'],
    ]);
    expect(merged.maintenanceWindows.map((window) => window.source)).toEqual(['remediation']);
    expect(mergeRemediation([{ source: 'targets[0]', value: 'off' }]).mode).toBe('off');
  });
});
