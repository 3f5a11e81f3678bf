"""Theme-aware, colour-blind-safe styling for the Playground (a ``<style>`` and SVG patterns).

The zone colours stay the paper's (:mod:`yeswidget.core.zones`); what changes is how they
read: the red band is cross-hatched (``xx``) and the yellow one hatched (``//``), as in the
published scripts, so the bands differ without hue (deuteranopia, protanopia, grey print);
the same hatching goes on the zone timeline's cells. Text, ticks and the table follow the
JupyterLab / VS Code theme variables; run lines get a lighter shade in dark themes so each
keeps a contrast of at least 3:1 against every band (the table swatch follows its line).
"""
from __future__ import annotations

from ...core.zones import BAND_OPACITY, ZONE_COLORS
from ...view.scene import LOWER_COLOR, UPPER_COLOR

__all__ = ["theme_html", "dark_shade", "HATCHES", "RUN_COLORS", "DARK_BAND_OPACITY", "DARK_EDGES", "STATE_COLORS"]

#: line colours of successive runs: none of the zone colours, each at least 3:1 against every band
#: on a light background (dark themes draw a lighter shade, see :func:`dark_shade`)
RUN_COLORS = ("#1f77b4", "#c2185b", "#6a3d9a", "#b15928", "#0b6e4f", "#2e5e8a", "#8c564b", "#555555")

#: pattern id → (zone, SVG path of the hatch lines in an 8×8 tile)
HATCHES = {"yw-hatch-red": ("red", "M0,0 L8,8 M8,0 L0,8"),
           "yw-hatch-yellow": ("yellow", "M0,8 L8,0 M-2,2 L2,-2 M6,10 L10,6")}

#: the bands' opacity in dark themes: brighter than on white (projectors wash dim bands out), yet dim
#: enough that every light run line, edge and mark keeps 3:1 against each band (tests/test_playground.py)
DARK_BAND_OPACITY = 0.45

#: the chart's edges and lr marks on a dark background: light shades, each ≥ 3:1 against every band
DARK_EDGES = {UPPER_COLOR: "#ffc9c9", LOWER_COLOR: "#c4f7d8", "#666666": "#e6e6e6"}

#: the status words' colours (``--yw-good`` / ``--yw-warn`` / ``--yw-bad``): light theme, dark theme
STATE_COLORS = {"good": ("#1e6b3a", "#7ee2a8"), "warn": ("#8a5a00", "#f2c94c"), "bad": ("#b00020", "#ff8a9a")}

_STRIPES = "repeating-linear-gradient({}deg, rgba(0,0,0,.45) 0 1.5px, transparent 1.5px 6px)"
_DARK = ('body[data-jp-theme-light="false"]', "body.vscode-dark", "body.vscode-high-contrast")


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _css_rgb(hex_color: str) -> str:
    """How the browser writes an inline colour back into a style attribute: ``rgb(31, 119, 180)``."""
    return "rgb({}, {}, {})".format(*_rgb(hex_color))


def dark_shade(hex_color: str, mix: float = 0.8) -> str:
    """``hex_color`` mixed ``mix`` of the way to white: the run's line colour on a dark background."""
    r, g, b = (round(c + (255 - c) * mix) for c in _rgb(hex_color))
    return f"#{r:02x}{g:02x}{b:02x}"


def _patterns() -> str:
    tiles = []
    for pid, (zone, lines) in HATCHES.items():
        color = ZONE_COLORS[zone]
        tiles.append(f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="8" height="8">'
                     f'<rect width="8" height="8" fill="{color}"/>'
                     f'<path d="{lines}" style="stroke: var(--jp-ui-font-color1, #000); stroke-width: 1.6px; '
                     f'stroke-opacity: 0.6"/></pattern>')
    return ('<svg width="0" height="0" style="position:absolute" aria-hidden="true" focusable="false">'
            f'<defs>{"".join(tiles)}</defs></svg>')


def _cells(zone: str) -> str:
    """Selector of the timeline cells and pill drawn in ``zone``'s colour."""
    rgb = _css_rgb(ZONE_COLORS[zone])
    return f'.yeswidget-playground .yw-cell[style*="{rgb}"], .yeswidget-playground .yw-pill[style*="{rgb}"]'


def _rules(run_colors: tuple[str, ...]) -> str:
    pg = ".yeswidget-playground"
    rules = [
        # hatching: the band paths and the timeline cells carry their zone colour inline
        *(f'{pg} .bqplot path.area[style*="fill: {_css_rgb(ZONE_COLORS[z])}"] {{ fill: url(#{pid}) !important; }}'
          for pid, (z, _) in HATCHES.items()),
        _cells("red") + f" {{ background-image: {_STRIPES.format(45)}, {_STRIPES.format(-45)} !important; }}",
        _cells("yellow") + f" {{ background-image: {_STRIPES.format(-45)} !important; }}",
        # theme text: captions and ticks in the theme's main text colour (not a fixed grey)
        f"{pg} .bqplot .tick text, {pg} .bqplot .axislabel, {pg} .bqplot .mainheading"
        " { fill: var(--jp-ui-font-color1, var(--vscode-editor-foreground, #222)) !important; }",
        f"{pg} small, {pg} .widget-label {{ color: var(--jp-ui-font-color1, #222); }}",
        f"{pg} .yes-note {{ color: var(--jp-warn-color0, #8a5a00) !important; }}",
        # the compact (projector) layout: 14 px ticks, captions and labels at least
        ".yeswidget-compact .bqplot .tick text, .yeswidget-compact .bqplot .axislabel,"
        " .yeswidget-compact .bqplot .legendtext { font-size: 14px !important; }",
        ".yeswidget-compact .yes-status, .yeswidget-compact .widget-html-content { line-height: 1.3 !important; }",
        ".yeswidget-compact small, .yeswidget-compact .widget-label, .yeswidget-compact .widget-readout,"
        " .yeswidget-compact .jupyter-button { font-size: 14px !important; }",
    ]
    rules += _dark_rules(pg)
    for color in dict.fromkeys(run_colors):  # lighter run lines (and their swatches) in dark themes
        light = dark_shade(color)
        for dark in _DARK:
            rules.append(f'{dark} {pg} .bqplot path.line[style*="stroke: {_css_rgb(color)}"]'
                         f" {{ stroke: {light} !important; }}")
            rules.append(f'{dark} {pg} .bqplot path.dot[style*="fill: {_css_rgb(color)}"]'
                         f" {{ fill: {light} !important; }}")
            rules.append(f'{dark} {pg} .yw-swatch[style*="{_css_rgb(color)}"] {{ background: {light} !important; }}')
    return "\n".join(rules)


def _dark_rules(pg: str) -> list[str]:
    """Status colours for both themes; in dark ones brighter bands and light edges, marks and words."""
    light = "; ".join(f"--yw-{name}: {pair[0]}" for name, pair in STATE_COLORS.items())
    rules = [f"{pg} {{ {light}; }}"]
    for dark in _DARK:
        words = "; ".join(f"--yw-{name}: {pair[1]}" for name, pair in STATE_COLORS.items())
        rules.append(f"{dark} {pg} {{ {words}; }}")
        rules.append(f'{dark} {pg} .bqplot path.area[style*="opacity: {BAND_OPACITY:g}"]'
                     f" {{ opacity: {DARK_BAND_OPACITY:g} !important; }}")
        for color, shade in DARK_EDGES.items():
            rules.append(f'{dark} {pg} .bqplot path.line[style*="stroke: {_css_rgb(color)}"]'
                         f" {{ stroke: {shade} !important; }}")
    return rules


def theme_html(run_colors: tuple[str, ...]) -> str:
    """The HTML to put once inside a Playground: the hatch patterns and the style rules."""
    return f"{_patterns()}<style>\n{_rules(run_colors)}\n</style>"
