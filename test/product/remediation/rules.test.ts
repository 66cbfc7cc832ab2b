/**
 * matchRemediation, the allow-list: only a resolved target with a matching rule is remediated;
 * a foreign, forged, ambiguous or unmatched payload is ignored or rejected, with the reason.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEventGridBody } from '../../../src/events/event-grid-schema.ts';
import { matchRemediation } from '../../../src/remediation/rules.ts';
import { alert, APP, FOREIGN, PG, remediationEstate, SITE } from '../../support/remediation-fixtures.ts';

const config = remediationEstate();
const targets = config.targets;

describe('matchRemediation', () => {
  it('remediates an allow-listed target through its first matching rule, params parsed for the kind', () => {
    const match = matchRemediation(config, targets, alert());
    expect(match.decision).toBe('remediate');
    if (match.decision !== 'remediate') return;
    expect(match.target.id).toBe(SITE);
    expect(match.target.kind).toBe('webSite');
    expect(match.rule.name).toBe('api-down');
    expect(match.rule.path).toBe('targets[0].remediation.rules[0]');
    expect(match.rule.ladder.map((rung) => [rung.action, rung.params, rung.cooldown.minutes])).toEqual([
      ['restart', { softRestart: false }, 10],
      ['swap-back', { slot: 'staging', withinMinutes: 120 }, 10],
    ]);
    expect(match.rule.escalate).toEqual({ notify: ['oncall'] });
  });

  it('compares the target id as ARM does (case, trailing slash) and matches by metric name', () => {
    const match = matchRemediation(config, targets, alert({ targets: [`${SITE.toUpperCase()}/`], rule: 'memory', metric: 'memorypercentage' }));
    expect(match.decision === 'remediate' && match.rule.name).toBe('high-memory');
  });

  it('ignores a foreign target, a target without rules, and an alert no rule matches', () => {
    const foreign = matchRemediation(config, targets, alert({ targets: [FOREIGN] }));
    expect(foreign.decision).toBe('ignore');
    expect(foreign.reason).toContain('not an estate target');
    const noRules = matchRemediation(config, targets, alert({ targets: [APP] }));
    expect(noRules).toMatchObject({ decision: 'ignore', reason: `no remediation rules for ${APP}` });
    const unmatched = matchRemediation(config, targets, alert({ rule: 'Something else', metric: 'CpuPercentage' }));
    expect(unmatched.decision).toBe('ignore');
    expect(unmatched.reason).toContain('api-down: alertRule: expected "Kilometers API down", found "Something else"');
  });

  it('does not widen the allow-list: a target of the config absent from the resolved targets is foreign', () => {
    const match = matchRemediation(config, targets.filter((target) => target.id !== SITE), alert());
    expect(match.decision).toBe('ignore');
    expect(match.reason).toContain('not an estate target');
  });

  it('rejects an alert naming two estate targets', () => {
    const match = matchRemediation(config, targets, alert({ targets: [SITE, PG] }));
    expect(match.decision).toBe('reject');
    expect(match.reason).toContain('ambiguous');
  });

  it('matches an Event Grid slot swap to the event rule, and ignores unknown events and validation handshakes', () => {
    const [swap] = parseEventGridBody(readFileSync('test/fixtures/events/slot-swap-completed.json', 'utf8'));
    if (swap === undefined) throw new Error('fixture');
    const match = matchRemediation(config, targets, swap);
    expect(match.decision === 'remediate' && [match.rule.name, match.rule.watch?.deadlineSeconds]).toEqual(['bad-swap', 600]);
    const [unknown] = parseEventGridBody(readFileSync('test/fixtures/events/unknown-type.json', 'utf8'));
    if (unknown === undefined) throw new Error('fixture');
    expect(matchRemediation(config, targets, unknown).decision).toBe('ignore');
    const [validation] = parseEventGridBody(readFileSync('test/fixtures/events/subscription-validation.json', 'utf8'));
    if (validation === undefined) throw new Error('fixture');
    expect(matchRemediation(config, targets, validation).reason).toContain('validation');
  });

  it('an event rule never matches an alert and an alert rule never matches an event', () => {
    const match = matchRemediation(remediationEstate((text) => text.replace('match: { alertRule: Kilometers API down }', 'match: { eventType: Microsoft.Web.SlotSwapCompleted }')), targets, alert());
    expect(match.decision).toBe('ignore');
    expect(match.reason).toContain('the rule matches events, this is an alert');
  });
});
