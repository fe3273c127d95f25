"""Library code of the BackgroundMattingV2 port (I/O, engines, export, evaluation, training)."""
from . import library_logging  # noqa: F401  first: quiets third-party import-time noise
