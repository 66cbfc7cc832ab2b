import { app } from '@azure/functions';
import type { HttpResponseInit } from '@azure/functions';
import packageJson from '../../package.json' with { type: 'json' };

/** Body of `GET /api/health`: the app is up, which version, and the server time. */
export interface HealthReport {
  readonly status: 'ok';
  readonly name: string;
  readonly version: string;
  readonly time: string;
}

/** Reports that the function app is up; it does not probe any dependency. */
export function healthReport(now: Date = new Date()): HealthReport {
  return { status: 'ok', name: packageJson.name, version: packageJson.version, time: now.toISOString() };
}

app.http('health', {
  route: 'health',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: (): HttpResponseInit => ({ status: 200, jsonBody: healthReport() }),
});
