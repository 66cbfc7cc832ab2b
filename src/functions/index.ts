/**
 * The Functions app entry point (`package.json` `main`, bundled to `dist/functions/index.js`).
 * Importing a trigger module registers its functions with `@azure/functions`.
 */
import './health.ts';
import './guardrails.ts';
import './ready.ts';
import './runbook-timers.ts';
import './runs.ts';
import '../orchestrators/runbook-run.ts';
import './alerts.ts';
import './event-grid.ts';
import './remediations.ts';
import '../orchestrators/remediation.ts';
import './health-probe.ts';
import '../orchestrators/verify-health.ts';
import './restores.ts';
import './drills.ts';
import './rotations.ts';
import './status.ts';
