/**
 * npm run infra:params follows the remediation rules: a web app with rules is wired (Website
 * Contributor on the site, Web Plan Contributor on its plan, its swap events) even without a
 * health block; one with `remediation: off` and no health is not.
 */
import { describe, expect, it } from 'vitest';
import { deriveParams } from '../../../scripts/infra-params.ts';
import { parseConfigText } from '../../../src/config/load.ts';

const SITE = '/subscriptions/5f504e96-b142-4ec0-8e99-50424fa25005/resourceGroups/rg-k/providers/Microsoft.Web/sites/app-k';

describe('infra:params and remediation rules', () => {
  it('wires a web app that has remediation rules, with its verification path', () => {
    const config = parseConfigText(
      `version: 1
estate: k
targets:
  - id: ${SITE}
    remediation:
      cooldown: { minutes: 15 }
      rules:
        - name: down
          match: { severity: Sev1 }
          ladder:
            - action: restart
              verify: { paths: [/health] }
  - id: ${SITE}-off
    remediation: off
`,
      { source: 'test.yaml' },
    );
    const params = deriveParams(config);
    expect(params.webApps).toEqual([{ id: SITE, healthPath: '/health', expectStatus: 200 }]);
    expect(params.webAppEventSources).toEqual([SITE]);
  });
});
