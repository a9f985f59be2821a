"""rhetoric: track how states frame world affairs in the news."""

__version__ = "0.1.0"
