"""What a POA&M workbook says about itself above its rows: provider, system, impact level, date.

The FedRAMP template's header fields (CSP, system name, impact level, POA&M date) and the
eMASS banner (system / project name, date exported) are filled from one of these; the
``export`` command builds it from its options and the config's ``export`` section.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict

from poam_sync.model import PoamItem


class ExportHeader(BaseModel):
    """Header values for an export. A value left ``None`` leaves its cell empty, except
    ``poam_date``, which defaults to the day of the export."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    csp: str | None = None
    system_name: str | None = None
    impact_level: str | None = None
    poam_date: date | None = None

    def for_items(self, items: Sequence[PoamItem]) -> ExportHeader:
        """This header, its system name defaulting to the first non-default system of
        ``items``."""
        if self.system_name is not None:
            return self
        found = next((i.system for i in items if i.system != "default"), None)
        return self.model_copy(update={"system_name": found})
