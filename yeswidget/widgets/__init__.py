"""The widgets room: the anywidget runs table and zone timeline (the only code here that imports anywidget)."""
from .tables import RunsTable, ZoneTimeline

__all__ = ["RunsTable", "ZoneTimeline"]
