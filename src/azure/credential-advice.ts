/**
 * Credential failures in words an operator acts on: which credentials were tried, what became
 * of each ("not installed", "not logged in", "no endpoint answered"), and what to do (`az login`,
 * the managed identity client id setting, start the sandbox) — never the SDK's class names
 * (`DefaultAzureCredential`, `AggregateAuthenticationError`, `CredentialUnavailableError`) or
 * its troubleshooting URLs, which say nothing to someone holding a pager.
 */

/** How people name a credential of @azure/identity's chain, by the class name in its message. */
const CREDENTIALS: readonly { readonly match: RegExp; readonly words: string }[] = [
  { match: /EnvironmentCredential|ClientSecretCredential|ClientCertificateCredential/, words: 'service principal in environment variables' },
  { match: /WorkloadIdentityCredential/, words: 'workload identity' },
  { match: /ManagedIdentityCredential|managed identity/i, words: 'managed identity' },
  { match: /Visual Studio Code|VisualStudioCodeCredential/, words: 'Visual Studio Code sign-in' },
  { match: /AzureDeveloperCliCredential|Azure Developer CLI/, words: 'Azure Developer CLI (azd)' },
  { match: /AzureCliCredential|Azure CLI/, words: 'Azure CLI' },
  { match: /AzurePowerShellCredential|PowerShell/, words: 'Azure PowerShell' },
  { match: /BrokerCredential|broker/i, words: 'the sign-in broker' },
];

/** What became of one credential, in a few words. */
function outcomeOf(message: string, unavailable: boolean): string {
  if (/could not be found|couldn't be found|Unable to execute|not installed|ENOENT/i.test(message)) return 'not installed';
  if (/az login|azd auth login|Connect-AzAccount|not logged in|sign(ed)? ?in/i.test(message)) return 'not signed in';
  if (/EnvironmentCredential is unavailable|environment variables are not fully configured/i.test(message)) return 'not set';
  if (/WorkloadIdentityCredential/.test(message) && unavailable) return 'not set up';
  if (/Network unreachable|network_error|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|IMDS endpoint|no managed identity endpoint/i.test(message)) return 'no managed identity endpoint answered';
  if (unavailable) return 'not available here';
  // A credential that answered and refused: keep its own first sentence, without class names or links.
  const sentence = message
    .replace(/\b\w+Credential:?\s*/g, '')
    .replace(/\s*To troubleshoot, visit \S+|\s*See https?:\/\/\S+( for details)?|https?:\/\/\S+/g, '')
    .split(/(?<=\.)\s/)[0]
    ?.trim();
  return sentence === undefined || sentence === '' ? 'refused' : `refused: ${sentence.slice(0, 160)}`;
}

function wordsFor(message: string): string {
  return CREDENTIALS.find((entry) => entry.match.test(message))?.words ?? 'a credential';
}

function innerErrors(cause: unknown): readonly Error[] | undefined {
  if (!(cause instanceof Error) || !('errors' in cause) || !Array.isArray(cause.errors)) return undefined;
  const inner: unknown[] = cause.errors;
  return inner.filter((item): item is Error => item instanceof Error);
}

/** The credential kind as people say it, for `expected a token from ...`. */
export function credentialInWords(kind: string): string {
  if (kind === 'DefaultAzureCredential') return 'the local credentials (environment, managed identity, Azure CLI, ...)';
  return kind;
}

/** What to do about a credential of this kind that produced no token. */
export function credentialAdvice(kind: string): string | undefined {
  if (kind === 'DefaultAzureCredential' || kind === 'Azure credential') {
    return 'to fix: sign in with `az login` (or `azd auth login`), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal; in Azure, the app uses its managed identity (a user-assigned one needs its client id in azure.managedIdentityClientId or the AZURE_CLIENT_ID app setting)';
  }
  if (kind === 'managed identity') {
    return 'to fix: give the app a managed identity with access to the resource; for a user-assigned identity set its client id in azure.managedIdentityClientId (estate config) or the AZURE_CLIENT_ID app setting';
  }
  if (kind === 'sandbox credential') {
    return 'to fix: start the sandbox (ops-autopilot sandbox) and use the config it prints; a generated config points at one running sandbox only';
  }
  return undefined;
}

/**
 * `found ...` for a credential failure: for a chain, each credential tried in words with what
 * became of it; otherwise `firstLine` (the cause's first line, already redacted), class names
 * dropped. The caller redacts the result (it may quote a service's message).
 */
export function credentialFailureInWords(cause: unknown, firstLine: string): string {
  const inner = innerErrors(cause);
  if (inner !== undefined && inner.length > 0) {
    const tried = inner.map((error) => `${wordsFor(error.message)} (${outcomeOf(error.message, error.name === 'CredentialUnavailableError')})`);
    return `no token from any: tried ${tried.join(', ')}`;
  }
  return withoutClassNames(firstLine);
}

/** A message without the SDK's class names and troubleshooting links. */
function withoutClassNames(message: string): string {
  const cleaned = message
    .replace(/\b\w+Credential:\s*/g, '')
    .replace(/\s*To troubleshoot, visit \S+|\s*See https?:\/\/\S+( for details)?/g, '')
    .trim()
    .replace(/\.$/, '');
  return cleaned === '' ? message : cleaned;
}
