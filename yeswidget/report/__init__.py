"""The report room: a run's verdict in words (:func:`verdict_lines`) and as a self-contained HTML page."""
from .verdict import verdict_lines, write_report_html

__all__ = ["verdict_lines", "write_report_html"]
