"""The provider layer: one request model, four adapters, a price catalogue and an emulator.

The public surface is re-exported here; pages and the job runner import from
``providers`` only.
"""

from .errors import *  # noqa: F403
from .types import *  # noqa: F403
