// Runs Azurite in this process (node azurite-child.mjs <azurite.js> <azurite args...>) with an IPC
// channel to the sandbox, so that the accounts' keys can change while it runs: a storage account
// key regenerated through ARM stops authenticating at once, as in Azure.
//
// Azurite reads its accounts from AZURITE_ACCOUNTS ("name:key1:key2;...") and re-reads that
// variable only once a minute (AccountDataStore.refresh). The sandbox sends the new value over
// IPC; this process sets it and makes every account store refresh before its next lookup, so the
// change applies to the very next request. Both patches are tested against the pinned Azurite version in
// test/sandbox/providers/storage-keys.test.ts (a key that no longer authenticates, one that does).
import { createRequire } from 'node:module';
import path from 'node:path';

const [entry, ...args] = process.argv.slice(2);
if (entry === undefined) {
  process.stderr.write('azurite-child: expected the path of azurite.js as the first argument\n');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const accountStore = require(path.join(path.dirname(entry), 'common', 'AccountDataStore.js')).default;
let generation = 0;
const lookup = accountStore.prototype.getAccount;
accountStore.prototype.getAccount = function getAccount(name) {
  if (this.sandboxGeneration !== generation) {
    this.refresh();
    this.sandboxGeneration = generation;
  }
  return lookup.call(this, name);
};

// With OAuth on, Azurite's token authenticator answers a request whose shared key failed with
// 400 InvalidAuthenticationInfo ("not a Bearer header"); Azure answers a bad signature with 403.
// Skipping the token check for non-Bearer requests lets Azurite answer 403, as Azure does.
const tokenAuthenticator = require(path.join(path.dirname(entry), 'blob', 'authentication', 'BlobTokenAuthenticator.js')).default;
const validateToken = tokenAuthenticator.prototype.validate;
tokenAuthenticator.prototype.validate = async function validate(request, context) {
  const authorization = request.getHeader('authorization');
  if (authorization !== undefined && !/^Bearer /i.test(authorization)) return undefined;
  return validateToken.call(this, request, context);
};

process.on('message', (message) => {
  if (typeof message !== 'object' || message === null || message.type !== 'accounts' || typeof message.value !== 'string') return;
  process.env.AZURITE_ACCOUNTS = message.value;
  generation += 1;
  process.send?.({ type: 'accounts-applied', id: message.id });
});
// Without the sandbox nothing should keep Azurite alive: the watchdog also kills it, this is sooner.
process.on('disconnect', () => {
  process.exit(0);
});

// Azurite parses process.argv itself.
process.argv = [process.argv[0] ?? process.execPath, entry, ...args];
require(entry);
