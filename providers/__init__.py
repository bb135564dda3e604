"""The provider layer: one request model, four adapters, typed errors and a price catalogue.

The public surface is re-exported here; pages and the job runner import from
``providers`` (or its modules) only.
"""

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .polling import next_interval, wait
from .registry import PROVIDERS, create, provider_class
from .types import *  # noqa: F403
from .types import __all__ as _types_all
from .validation import validate

__all__ = [*_errors_all, *_types_all, "PROVIDERS", "create", "next_interval", "provider_class", "validate", "wait"]
