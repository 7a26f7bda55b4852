"""The contract suite now ships in the package (:mod:`poam_sync.testing`); these names stay for
the connector tests that still import them from here."""

from __future__ import annotations

from poam_sync.testing import ConnectorContract, Harness, base_fields, new_stamp, projected

__all__ = ["ConnectorContract", "Harness", "base_fields", "new_stamp", "projected"]
