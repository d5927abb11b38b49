// A real OpenID Connect provider for the SSO tests: node-oidc-provider (npm registry) on a
// free loopback port, with its development login pages (any password; accounts and their
// groups come from a JSON file the test may rewrite between logins).
//
// usage: node oidc_provider.mjs CONFIG.json   (prints {"issuer": ...} once it listens)
//
// CONFIG: {clients: [...], accounts: "accounts.json", tamper: "tamper.txt"}. When the tamper
// file holds "audience", "expired" or "signature", the token endpoint's ID token is signed
// again after the provider made it: for another client, expired an hour ago, or with a key
// that is not in the provider's JWKS. That is how a hostile or broken provider (or a token
// swapped in transit) looks to the console; the provider itself never does it.
import fs from 'node:fs';
import http from 'node:http';
import Provider from 'oidc-provider';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
const stranger = (await generateKeyPair('RS256')).privateKey;
const signing = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
void publicKey;

function accounts() {
  return JSON.parse(fs.readFileSync(config.accounts, 'utf8'));
}

function tamperMode() {
  try {
    return fs.readFileSync(config.tamper, 'utf8').trim();
  } catch {
    return '';
  }
}

async function resign(idToken, mode) {
  const claims = JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
  if (mode === 'audience') claims.aud = 'another-client';
  if (mode === 'expired') {
    claims.iat -= 7200;
    claims.exp = claims.iat + 3600;
  }
  const key = mode === 'signature' ? stranger : privateKey;
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(key);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys: [signing] },
    cookies: { keys: ['cesi-like test provider'] },
    scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'],
      groups: ['groups'] },
    conformIdTokenClaims: false, // the claims asked for go into the ID token too
    pkce: { required: () => true },
    rotateRefreshToken: true, // a used refresh token is spent: the console must keep the new one
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    async findAccount(ctx, id) {
      const found = accounts()[id];
      if (!found) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, name: id, email: `${id}@example.org`,
            groups: found.groups };
        },
      };
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    const mode = tamperMode();
    if (ctx.path === '/token' && ctx.status === 200 && mode && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: await resign(ctx.body.id_token, mode) };
    }
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
