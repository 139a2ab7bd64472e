// A real OpenID provider for the sign-in tests: oidc-provider (certified) on a free port.
//
// Usage: node provider.mjs <config.json>. The config names the clients, the accounts (with
// their claims, groups included) and an optional clockOffsetSeconds (a provider whose clock
// runs behind issues ID tokens that are already expired). The first line on stdout is
// `listening <issuer>`; the process serves until it is killed.
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

if (config.clockOffsetSeconds) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + config.clockOffsetSeconds * 1000;
}

const accounts = new Map(Object.entries(config.accounts));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    // ID tokens live 10 minutes; cookies an hour, so a clock 20 minutes behind still keeps
    // its browser session while its ID tokens arrive expired.
    ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Session: 3600, Grant: 3600,
      Interaction: 3600 },
    cookies: { keys: ['paysheet-test-cookie-key'] },
    async findAccount(ctx, id) {
      const claims = accounts.get(id);
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});
