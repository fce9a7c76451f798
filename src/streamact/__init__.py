"""streamact: real-time video action recognition and online spatio-temporal action detection on CPUs."""

__version__ = "0.1.0"

from streamact.models import create_model, list_models  # noqa: E402

__all__ = ["create_model", "list_models", "__version__"]
