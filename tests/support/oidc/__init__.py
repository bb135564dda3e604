"""A real OpenID Connect provider for the login tests (npm's ``oidc-provider`` on Debian's node)."""

from tests.support.oidc.provider import OidcProvider, OidcUnavailable, ensure_installed

__all__ = ["OidcProvider", "OidcUnavailable", "ensure_installed"]
