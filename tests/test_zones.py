"""The zone rule, colours and words: one definition, read by every output."""
from __future__ import annotations

import math

import pytest

from yeswidget.core.zones import (
    NO_VERDICT,
    VERDICTS,
    ZONE_CODES,
    ZONE_COLORS,
    ZONE_STYLES,
    ZONE_WORDS,
    ZONES,
    own_loss_reason,
    to_db,
    zone_definitions,
    zone_of,
)


@pytest.mark.parametrize(
    "loss, has_edge, zone",
    [(2.0, True, "red"), (1.0, True, "yellow"), (0.75, True, "yellow"), (0.5, True, "green"), (0.4, True, "green"),
     (0.4, False, "yellow"), (math.nan, True, "red"), (math.inf, True, "red")],
)
def test_zone_of_follows_the_paper(loss, has_edge, zone):
    # YES-0 = 1.0, lower edge = 0.5: red above YES-0, green at or below the edge
    assert zone_of(loss, 1.0, 0.5, has_lower_edge=has_edge) == zone


def test_own_loss_reasons_name_the_loss_and_what_it_was_held_against():
    # YES-0 = 1.0, lower edge = 0.5, in L1Loss
    assert own_loss_reason("red", "L1Loss", loss=2.0, lower=0.5, depth=3).startswith("above YES-0 in L1Loss, ")
    assert "best affine map fitted in L1Loss" in own_loss_reason("red", "L1Loss", loss=2.0, lower=0.5, depth=1)
    assert "above the lower edge" in own_loss_reason("yellow", "L1Loss", loss=0.75, lower=0.5, depth=3)
    # at or below the edge but yellow: no edge was computed at this epoch
    assert "no lower edge computed" in own_loss_reason("yellow", "L1Loss", loss=0.4, lower=0.5, depth=3)
    assert own_loss_reason("green", "L1Loss", loss=0.4, lower=0.5, depth=3) == ""
    assert own_loss_reason(NO_VERDICT, "L1Loss", loss=0.4, lower=0.5, depth=3) == ""


def test_the_paper_colours_and_one_style_per_verdict():
    assert ZONES == ("red", "yellow", "green") and VERDICTS == ZONES + (NO_VERDICT,)
    assert ZONE_COLORS["red"] == "#FFB6C1" and ZONE_COLORS["yellow"] == "#FFD700" and ZONE_COLORS["green"] == "#00FF7F"
    assert set(ZONE_STYLES) == set(VERDICTS) == set(ZONE_WORDS) == set(ZONE_CODES)
    assert [ZONE_CODES[z] for z in ZONES] == [0, 1, 2] and ZONE_CODES[NO_VERDICT] == -1
    assert "YES-0" in ZONE_WORDS["red"]


def test_definitions_for_the_front_end_are_plain_json():
    import json

    definitions = json.loads(json.dumps(zone_definitions()))
    assert definitions["order"] == list(VERDICTS)
    assert definitions["zones"]["green"]["band"] == ZONE_COLORS["green"]
    assert definitions["zones"]["red"]["meaning"] == ZONE_WORDS["red"]


@pytest.mark.parametrize("value, db", [(1.0, 0.0), (10.0, 10.0), (0.0, -math.inf), (math.inf, math.inf)])
def test_to_db(value, db):
    assert to_db(value) == db


@pytest.mark.parametrize("value", [-1.0, math.nan, None, "1"])
def test_to_db_is_nan_for_what_has_no_decibels(value):
    assert math.isnan(to_db(value))
