"""TensorBoard output: the event files, read back with TensorBoard's own EventAccumulator, hold the run."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from output_helpers import monitored_run  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from yeswidget.core.zones import ZONE_CODES  # noqa: E402
from yeswidget.integrations import TensorBoardOutput  # noqa: E402


def read_back(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0, "images": 0})
    events.Reload()
    return events


def scalars(events, tag) -> dict[int, float]:
    return {event.step: event.value for event in events.Scalars(tag)}


def text(events, tag) -> list[str]:
    return [event.tensor_proto.string_val[0].decode() for event in events.Tensors(f"{tag}/text_summary")]


def test_the_event_files_hold_the_run_record(tmp_path):
    monitor = monitored_run(14, attach=[TensorBoardOutput(log_dir=tmp_path / "tb")])
    run = monitor.run
    events = read_back(tmp_path / "tb")
    f32 = np.float32
    assert scalars(events, "yes/loss") == {r.epoch: f32(r.loss) for r in run.epochs}
    assert scalars(events, "yes/yes0") == {r.epoch: f32(r.upper) for r in run.epochs}
    assert scalars(events, "yes/lower") == {r.epoch: f32(r.lower) for r in run.epochs}
    for k in (1, 2):  # depth 3: YES-1 and YES-2
        assert scalars(events, f"yes/yes_k/{k}") == {r.epoch: f32(r.yes_k[k - 1]) for r in run.epochs}
    assert scalars(events, "yes/zone") == {r.epoch: ZONE_CODES[r.zone] for r in run.epochs}
    assert set(scalars(events, "yes/zone").values()) == {0, 1}  # red at first, yellow from epoch 12
    assert "yes/accuracy" not in events.Tags()["scalars"]  # a regression run has none

    verdict = text(events, "yes/verdict")
    assert len(verdict) == 1 and "YES verdict: yellow" in verdict[0]
    assert "bounds and epoch loss on all 64 training samples" in verdict[0]
    assert text(events, "yes/certification") == [run.certification["text"]]
    image = events.Images("yes/cloud")
    assert len(image) == 1 and image[0].step == 14 and image[0].width > 300


def test_a_writer_passed_in_is_used_and_left_open(tmp_path):
    writer = SummaryWriter(log_dir=str(tmp_path / "mine"))
    monitor = monitored_run(3, attach=[TensorBoardOutput(writer, x="step", image=False)])
    writer.add_scalar("user/after", 1.0, 0)  # still open
    writer.close()
    events = read_back(tmp_path / "mine")
    steps = sorted(scalars(events, "yes/loss"))
    assert steps == [r.step for r in monitor.run.epochs] == [4, 8, 12]
    assert "yes/cloud" not in events.Tags()["images"]
    assert "user/after" in events.Tags()["scalars"]


def test_a_yellow_plateau_is_noted_and_replay_writes_a_saved_run(tmp_path):
    monitor = monitored_run(22, lr_from={13: 0.0})  # yellow from epoch 12, then no learning
    assert any(w.startswith("plateau:") for w in monitor.run.warnings)
    TensorBoardOutput(log_dir=tmp_path / "replayed", image=False).replay(monitor.run)
    events = read_back(tmp_path / "replayed")
    assert len(events.Scalars("yes/loss")) == 22
    notes = {e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors("yes/notes/text_summary")}
    assert list(notes) == [21] and "stayed in yellow for 10 epochs (12–21)" in notes[21]
    assert "plateau:" in text(events, "yes/verdict")[0]


def test_bad_arguments_say_what_to_pass(tmp_path):
    with pytest.raises(TypeError, match="SummaryWriter"):
        TensorBoardOutput("tb")
    with pytest.raises(ValueError, match="'epoch' or 'step'"):
        TensorBoardOutput(x="time")
    with pytest.raises(ValueError, match="not both"):
        TensorBoardOutput(SummaryWriter(log_dir=str(tmp_path)), log_dir=tmp_path)
