// A real OpenID provider for the sign-in tests: oidc-provider (certified) on a free port.
//
// Usage: node provider.mjs <config.json>. The config names the clients, the accounts (with
// their claims, groups included), an optional clockOffsetSeconds (a provider whose clock
// runs behind issues ID tokens that are already expired) and `hostile`: client id → how the
// provider misbehaves in its token responses to that client, so the refusals go through the
// whole flow at the relying party:
//   "audience"    the ID token is re-issued, signed with the provider's own key (in its
//                 JWKS), for another audience (`hostileAudience`);
//   "tamper"      the ID token's payload is altered in transit (groups and email of another
//                 person) and the provider's original signature is kept;
//   "foreign-key" the ID token is signed by a key that is not in the provider's JWKS, under
//                 the kid of the provider's key.
// The first line on stdout is `listening <issuer>`; the process serves until it is killed.
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

if (config.clockOffsetSeconds) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + config.clockOffsetSeconds * 1000;
}

const accounts = new Map(Object.entries(config.accounts));
const hostile = config.hostile || {};

function rsaJwk(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

// The provider's signing key (published in its JWKS) and a stranger's key under the same kid.
const signingKey = rsaJwk('paysheet-test-key');
const foreignKey = rsaJwk(signingKey.kid);

const b64 = (value) => Buffer.from(value).toString('base64url');

function part(token, index) {
  return JSON.parse(Buffer.from(token.split('.')[index], 'base64url').toString('utf8'));
}

function signed(payload, jwk) {
  const input = `${b64(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: jwk.kid }))}.${b64(JSON.stringify(payload))}`;
  const signature = sign('sha256', Buffer.from(input), createPrivateKey({ key: jwk, format: 'jwk' }));
  return `${input}.${signature.toString('base64url')}`;
}

function misbehave(how, idToken) {
  const payload = part(idToken, 1);
  if (how === 'audience') {
    return signed({ ...payload, aud: config.hostileAudience, azp: config.hostileAudience },
      signingKey);
  }
  if (how === 'tamper') {
    const [header, , signature] = idToken.split('.');
    const forged = { ...payload, email: 'hannah@fund.example', groups: ['paysheet-hr'] };
    return `${header}.${b64(JSON.stringify(forged))}.${signature}`;
  }
  if (how === 'foreign-key') return signed(payload, foreignKey);
  throw new Error(`unknown hostile mode ${how}`);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [signingKey] },
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
  provider.use(async (ctx, next) => {
    await next();
    const how = hostile[ctx.oidc?.client?.clientId];
    if (ctx.oidc?.route === 'token' && how && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: misbehave(how, ctx.body.id_token) };
    }
  });
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});
