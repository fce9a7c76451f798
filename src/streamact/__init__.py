"""streamact: real-time video action recognition and online spatio-temporal action detection on CPUs."""

__version__ = "0.1.0"

__all__ = ["create_model", "list_models", "__version__"]


def __getattr__(name: str):
    # Lazy so that `streamact --help` and light submodules do not pay for importing timm.
    if name in ("create_model", "list_models"):
        from streamact import models

        return getattr(models, name)
    raise AttributeError(f"module 'streamact' has no attribute {name!r}")
