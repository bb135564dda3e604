"""Helpers the tests start beside the app: servers it talks to (the identity provider)."""
