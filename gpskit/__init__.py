"""gpskit: phone photos in, a clean, leak-free, geotagged image dataset (and a model) out."""

__version__ = "0.1.0"

__all__ = ["__version__"]
