/**
 * Fail fast on bad settings: the app checks its settings and estate configuration when it
 * starts (an `appStart` hook that logs every problem at once), and `GET /api/ready` (function
 * key) answers 503 with the problems until they are fixed, 200 with a short summary once they
 * are. `GET /api/health` stays anonymous and says nothing about the estate. The check is
 * `checkReadiness` (src/startup/readiness.ts); every timer runs it too and fails with the same
 * message while the app is not ready.
 */
import { app, type HttpResponseInit } from '@azure/functions';
import { checkReadiness, formatReadinessProblem, notReadyMessage, readyMessage, type Readiness } from '../startup/readiness.ts';

/** Seconds a caller should wait before asking again after a 503: settings change by redeploy or restart. */
const RETRY_AFTER_SECONDS = 30;

/** The response of `GET /api/ready` for a readiness outcome. */
export function readyResponse(readiness: Readiness, now: Date = new Date()): HttpResponseInit {
  const headers = { 'cache-control': 'no-store' };
  if (readiness.ready) {
    return { status: 200, headers, jsonBody: { status: 'ready', checkedAt: now.toISOString(), ...readiness.summary } };
  }
  return {
    status: 503,
    headers: { ...headers, 'retry-after': String(RETRY_AFTER_SECONDS) },
    jsonBody: {
      status: 'not ready',
      checkedAt: now.toISOString(),
      problems: readiness.problems.map((problem) => ({ ...problem, text: formatReadinessProblem(problem) })),
    },
  };
}

app.hook.appStart(async () => {
  // Never throws: a failing hook would keep the app, and with it /api/ready, from starting.
  const readiness = await checkReadiness();
  // Outside an invocation there is no context logger; the worker forwards the console to the host's logs.
  if (readiness.ready) console.log(readyMessage(readiness.summary));
  else console.error(notReadyMessage(readiness.problems));
});

app.http('ready', {
  route: 'ready',
  methods: ['GET'],
  authLevel: 'function',
  handler: async (): Promise<HttpResponseInit> => readyResponse(await checkReadiness()),
});
