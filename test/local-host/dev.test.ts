/**
 * `npm run dev -- --json`, spawned as a script would: ONE JSON object on stdout once ready
 * (logs on stderr) with what it takes to drive the local app — base URL, keys, function URLs,
 * the sandbox's endpoints, CA file and generated estate configs — and `--world` by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';

interface DevJson {
  baseUrl: string;
  keys: { function: string; master: string };
  configFile: string;
  statusPageUrl: string;
  functions: { name: string; trigger: string; url?: string; key?: string; runNow?: string }[];
  sandbox: { baseUrl: string; caFile: string; tokenEndpoint: string; worlds: { name: string; configFile: string }[]; estates: unknown[] };
}

let child: ChildProcess | undefined;
afterAll(async () => {
  if (child?.pid === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child?.once('exit', resolve));
  // npm does not pass signals on: stop the whole process group it leads.
  const group = -child.pid;
  process.kill(group, 'SIGTERM');
  await exited;
  // npm exits first; wait (bounded) until the host, the sandbox and its children are gone too.
  for (let waited = 0; waited < 30_000; waited += 200) {
    try {
      process.kill(group, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('npm run dev did not stop within 30 s of SIGTERM');
});

describe('npm run dev -- --json', () => {
  it('prints one JSON object once ready, with the keys, URLs and sandbox configs, and the app answers with them', async () => {
    child = spawn('npm', ['run', '-s', 'dev', '--', '--json', '--port', '0', '--world', 'lms'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const ready = await new Promise<DevJson>((resolve, reject) => {
      child?.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (!stdout.includes('\n')) return;
        try {
          resolve(JSON.parse(stdout.split('\n')[0] ?? '') as DevJson);
        } catch {
          reject(new Error(`expected one JSON object as the first line of stdout, found: ${stdout.slice(0, 300)}`));
        }
      });
      child?.once('exit', (code) => {
        reject(new Error(`npm run dev exited ${String(code)} before it was ready: ${stderr}`));
      });
    });
    // Logs went to stderr; stdout holds the object alone.
    expect(stderr).toContain('Starting the sandbox...');
    expect(ready.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.sandbox.worlds.map((world) => world.name)).toEqual(['lms']);
    expect(ready.configFile).toBe(ready.sandbox.worlds[0]?.configFile);
    expect(await readFile(ready.sandbox.caFile, 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(await readFile(ready.configFile, 'utf8')).toContain(`resourceManagerEndpoint: ${ready.sandbox.baseUrl}`);
    // The go/no-go page it prints answers with the function key (lms: no-go, its backup is 74 h old).
    expect(ready.statusPageUrl).toBe(`${ready.baseUrl}/api/status/page`);
    const page = await fetch(ready.statusPageUrl, { headers: { 'x-functions-key': ready.keys.function } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-decision="no-go"');
    const timer = ready.functions.find((fn) => fn.name === 'backupVerifyTimer');
    expect(timer?.runNow).toBe(`POST ${ready.baseUrl}/admin/functions/backupVerifyTimer`);
    const denied = await fetch(`${ready.baseUrl}/admin/functions/backupVerifyTimer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":""}' });
    expect(denied.status).toBe(401);
    const invoked = await fetch(`${ready.baseUrl}/admin/functions/backupVerifyTimer`, {
      method: 'POST',
      headers: { 'x-functions-key': ready.keys.master, 'content-type': 'application/json' },
      body: '{"input":""}',
    });
    expect(invoked.status).toBe(202);
    expect(stdout.trim().split('\n')).toHaveLength(1);
  }, 120_000);
});
