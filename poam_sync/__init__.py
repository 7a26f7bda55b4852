"""poam-sync: one canonical POA&M record, synchronized both ways with Jira and ServiceNow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("poam-sync")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
