/**
 * Pieces of the CLI's help and options that more than one command tree uses (main.ts and the
 * command trees it registers), so that every command says the same thing in the same words.
 */
import type { Command } from 'commander';

/** The `Exit codes:` block of a command's help, from the codes it can end with. */
export function exitCodes(lines: readonly [number, string][]): string {
  return ['', 'Exit codes:', ...lines.map(([code, text]) => `  ${String(code).padEnd(4)} ${text}`)].join('\n');
}

/** The `Examples:` block of a command's help. */
export function examples(lines: readonly string[]): string {
  return ['', 'Examples:', ...lines.map((line) => `  ${line}`)].join('\n');
}

/**
 * The options of a command that talks to the app's HTTP API (`--app`, `--key`, `--app-ca`);
 * the app client reads them, with the environment variables named here as defaults.
 */
export function appOptions(command: Command): Command {
  return command
    .option('--app <url>', 'the app: https://<app>.azurewebsites.net, or the local host npm run dev prints (default: OPS_AUTOPILOT_APP_URL)')
    .option('--key <key>', 'a function key of the app (default: OPS_AUTOPILOT_APP_KEY); sent in a header, never in a URL')
    .option('--app-ca <pem>', 'extra CA certificate(s) to trust for the app, besides the system roots (default: OPS_AUTOPILOT_APP_CA_FILE)');
}
