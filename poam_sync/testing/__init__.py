"""Test kit for connectors: the contract suite every connector's tests subclass.

    from poam_sync.testing import ConnectorContract, Harness

    class TestArcherContract(ConnectorContract):
        @pytest.fixture
        def harness(self) -> Harness:
            return ArcherHarness(...)

Needs pytest (``pip install poam-sync[testing]``); poam-sync itself never imports this package.
See docs/connectors.md.
"""

from __future__ import annotations

from poam_sync.testing.contract import (
    ConnectorContract,
    Harness,
    base_fields,
    new_stamp,
    projected,
)

__all__ = ["ConnectorContract", "Harness", "base_fields", "new_stamp", "projected"]
