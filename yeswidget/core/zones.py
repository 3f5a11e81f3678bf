"""The zone rule, its colours and its words: the one definition.

Python (monitor, printer, CLI, reports, charts) and JavaScript (the runs table
and the zone timeline receive :func:`zone_definitions` as a synced trait) all
read from here.

Zones, from bad to good: ``red`` (above YES-0), ``yellow`` (inside the cloud),
``green`` (at or below the lower edge). ``none`` is the honest "no verdict":
the bounds cannot judge this run (the reason is given in words elsewhere).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ZONES",
    "VERDICTS",
    "NO_VERDICT",
    "ZoneStyle",
    "ZONE_STYLES",
    "ZONE_COLORS",
    "ZONE_WORDS",
    "ZONE_CODES",
    "zone_of",
    "verdict",
    "own_loss_reason",
    "OPTIMUM_RTOL",
    "EXACT_RTOL",
    "zone_definitions",
    "to_db",
]

#: the three zones of the cloud, from bad to good
ZONES: tuple[str, ...] = ("red", "yellow", "green")
#: "no verdict": the bounds cannot judge this run (degenerate bounds); shown grey
NO_VERDICT = "none"
#: every value an epoch record's ``zone`` may take
VERDICTS: tuple[str, ...] = ZONES + (NO_VERDICT,)


@dataclass(frozen=True)
class ZoneStyle:
    """How one zone is drawn and read out.

    ``band``: the paper's area colour (drawn at ``BAND_OPACITY``); ``edge``: a darker
    shade of it for text and strokes on a light background; ``word``: what the zone
    says about training in a few words; ``meaning``: one line for a status line;
    ``code``: a number for trackers' scalar plots (higher is better, -1 no verdict).
    """

    name: str
    band: str
    edge: str
    word: str
    meaning: str
    code: int


ZONE_STYLES: dict[str, ZoneStyle] = {
    "red": ZoneStyle("red", "#FFB6C1", "#b3261e", "ineffective",
                     "above YES-0: training is ineffective so far, the data has not shaped the weights yet", 0),
    "yellow": ZoneStyle("yellow", "#FFD700", "#8a6d00", "caution",
                        "inside the cloud: meaningful training, certainly not optimal", 1),
    "green": ZoneStyle("green", "#00FF7F", "#1e6b3a", "effective",
                       "at or below the lower edge: effective training, maybe diminishing returns", 2),
    NO_VERDICT: ZoneStyle(NO_VERDICT, "#C8C8C8", "#555555", "no verdict",
                          "no verdict: the bounds cannot judge this run", -1),
}

#: band colour of each zone (the paper's area colours)
ZONE_COLORS: dict[str, str] = {name: style.band for name, style in ZONE_STYLES.items()}
#: one-line meaning of each zone
ZONE_WORDS: dict[str, str] = {name: style.meaning for name, style in ZONE_STYLES.items()}
#: a number per zone for scalar trackers (red 0, yellow 1, green 2, none -1)
ZONE_CODES: dict[str, int] = {name: style.code for name, style in ZONE_STYLES.items()}

#: opacity of the cloud's bands
BAND_OPACITY = 0.4


def zone_of(loss: float, upper: float, lower: float, *, has_lower_edge: bool = True) -> str:
    """The zone of an epoch loss against the cloud (all in the metric E).

    ``red`` above YES-0 (``upper``) or not finite; ``green`` at or below ``lower``
    when a lower edge has been computed (``has_lower_edge``); else ``yellow``.
    Without a computed lower edge nothing certifies green: a loss below YES-0 is yellow.
    """
    loss = float(loss)
    if not math.isfinite(loss) or loss > upper:
        return "red"
    if has_lower_edge and loss <= lower:
        return "green"
    return "yellow"


#: depth 1: a loss within this relative distance of YES-0 (the least-squares optimum) is "at the optimum"
OPTIMUM_RTOL = 0.05
#: a bound below this fraction of the targets' own spread is "0": the bounds cannot grade the run
EXACT_RTOL = 1e-9


def verdict(loss: float, upper: float, lower: float, *, has_lower_edge: bool, depth: int,
            target_scale: float, constant: bool = False) -> tuple[str, str]:
    """The zone of an epoch loss and, where the plain rule would mislead, the reason in words.

    ``target_scale``: E of predicting the targets' mean (their spread; same unit as the loss).
    Degenerate bounds give no verdict: YES-0 ≈ 0 (the data is reached exactly in closed form),
    or a lower edge ≈ 0 (a hidden layer can interpolate its targets). Depth 1: YES-0 *is* the
    least-squares optimum, so a loss within ``OPTIMUM_RTOL`` of it is green "at the optimum".
    ``constant``: the targets do not vary (nothing to learn): no verdict.
    """
    loss = float(loss)
    if not math.isfinite(loss):
        return "red", f"the loss is {loss}"
    if constant:
        return NO_VERDICT, ("the targets are constant (zero spread): there is nothing to learn, so the bounds "
                            "cannot grade this training; check that Y holds the targets you train on")
    # (abs: a loss that can be negative, such as Poisson NLL, has no floor at 0 to be degenerate at)
    if target_scale > 0 and abs(upper) <= EXACT_RTOL * target_scale:
        return NO_VERDICT, ("YES-0 is 0: a closed-form least-squares network already reproduces the "
                            "targets exactly, so the bounds cannot grade this training")
    if depth == 1:
        if loss - upper <= OPTIMUM_RTOL * abs(upper):  # (abs: a loss such as Poisson NLL can be negative)
            return "green", f"at the optimum of the last layer (within {OPTIMUM_RTOL:.0%} of YES-0)"
        return "red", ""
    if loss > upper:
        return "red", ""
    if has_lower_edge and target_scale > 0 and abs(lower) <= EXACT_RTOL * target_scale:
        return NO_VERDICT, ("the lower edge is 0: a hidden layer is at least as wide as the certification "
                            "set, so it can interpolate its targets; certify on more samples than the widest layer")
    return zone_of(loss, upper, lower, has_lower_edge=has_lower_edge), ""


def own_loss_reason(zone: str, loss_name: str, *, loss: float, lower: float, depth: int) -> str:
    """What a red or yellow epoch judged in the user's own loss (``loss_name``) was compared with,
    in that loss's words: its reason where :func:`verdict` needs none ("" for the other zones).

    The plain words (:data:`ZONE_WORDS`) are the paper's, in squared error; a run judged in
    BCE or Huber says which construction its loss was held against.
    """
    fitted = f"with its last layer fitted in {loss_name}"
    if zone == "red" and depth == 1:
        return (f"more than {OPTIMUM_RTOL:.0%} above YES-0 in {loss_name}, the loss of the best affine map "
                f"fitted in {loss_name}")
    if zone == "red":
        return (f"above YES-0 in {loss_name}, the loss a layer-wise least-squares network {fitted} reaches "
                "from the data alone")
    if zone != "yellow":
        return ""
    if float(loss) <= lower:  # below the edge, but no edge was computed for this epoch
        return f"at or below YES-0 in {loss_name}; no lower edge computed at this epoch, so not green"
    return (f"inside the cloud in {loss_name}: at or below YES-0, above the lower edge, the best loss a "
            f"layer-wise least-squares network {fitted} reaches from the model's own hidden layers")


def zone_definitions() -> dict[str, Any]:
    """The zones as JSON for the front end: order, and each zone's style."""
    return {
        "order": list(VERDICTS),
        "band_opacity": BAND_OPACITY,
        "zones": {name: asdict(style) for name, style in ZONE_STYLES.items()},
    }


def to_db(value: Any) -> float:
    """``10·log10(value)``; NaN for NaN, negative or non-numbers, ``-inf`` for 0, ``inf`` for inf."""
    import numbers

    if not isinstance(value, numbers.Real):  # numbers.Real: numpy scalars too, not None or strings
        return math.nan
    value = float(value)
    if math.isnan(value) or value < 0:
        return math.nan
    if value == 0:
        return -math.inf
    if math.isinf(value):
        return math.inf
    return 10.0 * math.log10(value)
