/**
 * Posts an Event Grid event file to a running local host:
 * `tsx local-host/post-event.ts <functionName> <event.json> [--url http://127.0.0.1:7071] [--key MASTER_KEY]`.
 * The file holds one event or an array, in Event Grid schema or CloudEvents 1.0 schema.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseEventGridBody } from './event-grid.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { url: { type: 'string', default: 'http://127.0.0.1:7071' }, key: { type: 'string' } },
});
const [functionName, file] = positionals;
if (!functionName || !file) {
  process.stderr.write('usage: tsx local-host/post-event.ts <functionName> <event.json> [--url URL] [--key MASTER_KEY]\n');
  process.exit(2);
}
const key = values.key ?? process.env.LOCAL_HOST_MASTER_KEY;
if (!key) {
  process.stderr.write('post-event: the master key is required (--key, or LOCAL_HOST_MASTER_KEY); npm run dev prints it\n');
  process.exit(2);
}
const body = JSON.parse(readFileSync(file, 'utf8')) as unknown;
const delivery = parseEventGridBody(body);
const headers: Record<string, string> = delivery.schema === 'CloudEventSchemaV1_0'
  ? { 'content-type': Array.isArray(body) ? 'application/cloudevents-batch+json' : 'application/cloudevents+json' }
  : { 'content-type': 'application/json', 'aeg-event-type': 'Notification' };
const url = `${values.url.replace(/\/+$/, '')}/runtime/webhooks/EventGrid?functionName=${encodeURIComponent(functionName)}`;
const response = await fetch(url, { method: 'POST', headers: { ...headers, 'x-functions-key': key }, body: JSON.stringify(body) });
process.stdout.write(`${delivery.events.length} ${delivery.schema} event(s) → ${functionName}: HTTP ${response.status}\n`);
process.exit(response.ok ? 0 : 1);
