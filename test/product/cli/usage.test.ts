/**
 * What an operator reads before running anything: each command's `--help` (examples and the
 * exit codes it uses), `config validate --json`, and errors under `--json` (one JSON object on
 * stdout, nothing on stderr, the same non-zero exit code as without). No sandbox needed.
 */
import { describe, expect, it } from 'vitest';
import { cli } from '../../support/cli.ts';

describe('--help', () => {
  it('every command shows examples and its exit codes', async () => {
    const commands: [string[], number[]][] = [
      [['plan'], [0, 1, 2, 3]],
      [['run'], [0, 1, 2, 3, 130]],
      [['inventory'], [0, 1, 2]],
      [['config', 'validate'], [0, 1, 2]],
      [['sandbox'], [0, 1, 2]],
      [['demo'], [0, 1, 2]],
    ];
    const runs = await Promise.all(commands.map(([command]) => cli([...command, '--help'])));
    commands.forEach(([command, codes], index) => {
      const run = runs[index];
      expect(run?.code, command.join(' ')).toBe(0);
      const text = run?.stdout ?? '';
      expect(text, command.join(' ')).toMatch(/^Examples:\n {2}ops-autopilot /m);
      const listed = /^Exit codes:\n((?: {2}\d+ .*\n?)+)/m.exec(text)?.[1] ?? '';
      expect(listed.split('\n').filter((line) => line !== '').map((line) => Number(line.trim().split(' ')[0])), command.join(' ')).toEqual(codes);
    });
    // Help wraps at the terminal width; compare the words.
    const words = (index: number): string => (runs[index]?.stdout ?? '').replace(/\s+/g, ' ');
    expect(words(1)).toContain('Ctrl-C or Ctrl-D at the prompt (nothing applied, nobody notified, the record says cancelled)');
    expect(words(1)).toContain('--show <what>');
    expect(words(5)).toContain('APPLY its cleanups inside the sandbox');
    expect(words(0)).toContain('writes nothing and notifies nobody unless --record/--notify');
  });
});

describe('config validate --json', () => {
  it('prints { valid, estate, targets, dryRun } for a good file and exits 0', async () => {
    const run = await cli(['config', 'validate', 'examples/xshopai.yaml', '--json']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ valid: true, file: 'examples/xshopai.yaml', estate: 'xshopai', targets: 5, scopes: 1, dryRun: true });
  });

  it('prints every issue with path and line for a broken file and exits 1', async () => {
    const run = await cli(['config', 'validate', 'examples/broken/keep-zero.yaml', '--json']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('');
    const doc = JSON.parse(run.stdout) as { valid: boolean; issues: { path: string; message: string; line?: number }[] };
    expect(doc.valid).toBe(false);
    expect(doc.issues.map((issue) => issue.path)).toEqual(['targets[0].runbooks.revision-cleanup.keep', 'targets[1].runbooks.image-purge.keep']);
    expect(doc.issues.every((issue) => typeof issue.line === 'number')).toBe(true);
  });
});

describe('errors under --json', () => {
  it('are one JSON line on stdout with the exit code, for usage, config and runbook errors', async () => {
    const [option, config, runbook] = await Promise.all([
      cli(['plan', 'backup-verify', '--config', 'examples/lms.yaml', '--json', '--no-such-option']),
      cli(['inventory', '--config', 'examples/does-not-exist.yaml', '--json']),
      cli(['plan', 'tidy-up', '--config', 'examples/lms.yaml', '--json']),
    ]);
    // stdout holds the JSON alone; the human line still goes to stderr.
    for (const run of [option, config, runbook]) {
      expect(run.stdout.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/^error: /);
    }
    expect(option.code).toBe(2);
    expect(JSON.parse(option.stdout)).toEqual({ error: { name: 'UsageError', message: "unknown option '--no-such-option'", exitCode: 2 } });
    expect(config.code).toBe(1);
    expect(JSON.parse(config.stdout)).toEqual({
      error: {
        name: 'ConfigError',
        message: 'invalid configuration in examples/does-not-exist.yaml: 1 issue',
        exitCode: 1,
        issues: [{ path: '', message: 'expected a configuration file, found none at this path' }],
      },
    });
    expect(runbook.code).toBe(2);
    expect((JSON.parse(runbook.stdout) as { error: { message: string } }).error.message).toContain('expected a runbook name (backup-verify, keyvault-backup, revision-cleanup, image-purge, secret-expiry), found "tidy-up"');
  });
});
