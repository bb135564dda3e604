"""The provider layer: one request model, four adapters, a price catalogue and an emulator.

The public surface is re-exported here; pages and the job runner import from
``providers`` only.
"""

from .errors import *  # noqa: F403
from .types import *  # noqa: F403
from .polling import next_interval, wait
from .registry import PROVIDERS, create, provider_class
from .validation import validate
