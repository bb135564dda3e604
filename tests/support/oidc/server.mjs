// A real OpenID Connect provider for the login tests, on 127.0.0.1 only.
//
// Anyone can sign in as any email: the login page (oidc-provider's development
// interactions, /interaction/...) takes an email in `login` and any password, then asks for
// consent. The ID token carries `email` (conformIdTokenClaims: false), which st.user reads.
// PORT and REDIRECT_URI (comma-separated, the app's /oauth2callback) come from the environment.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const redirects = (process.env.REDIRECT_URI || '').split(',').filter(Boolean);

const oidc = new Provider(issuer, {
  clients: [{
    client_id: 'image-studio',
    client_secret: 'test-secret',
    redirect_uris: redirects,
    post_logout_redirect_uris: redirects,
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true, name: id.split('@')[0] };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['image-studio-test'] },
});

oidc.listen(port, '127.0.0.1', () => console.log(`oidc on ${issuer}`));
