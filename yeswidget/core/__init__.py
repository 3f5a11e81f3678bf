"""The core room: the zone rule, the run record, the store and the event bus (no torch, no UI)."""
