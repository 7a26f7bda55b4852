"""Connectors to remote trackers. Each speaks canonical values; see :mod:`.base`."""
