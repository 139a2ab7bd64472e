"""OIDC sign-in with the tenant's identity provider (authorization code + PKCE)."""
