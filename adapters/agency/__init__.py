"""Agency sync: placement and recall files out, activity files in.

``placements`` writes what an agency holds (its placement file) and what was
taken back from it (recalls); ``activity`` posts the agency's own work
(contacts, promises, payments, status updates) into the ledger, each row once.
"""

from __future__ import annotations

from adapters.agency.activity import ImportReport, RowResult, import_activity
from adapters.agency.placements import (
    PLACEMENT_COLUMNS,
    RECALL_COLUMNS,
    placement_rows,
    recall_rows,
    write_placements,
    write_recalls,
)

__all__ = [
    "PLACEMENT_COLUMNS",
    "RECALL_COLUMNS",
    "ImportReport",
    "RowResult",
    "import_activity",
    "placement_rows",
    "recall_rows",
    "write_placements",
    "write_recalls",
]
