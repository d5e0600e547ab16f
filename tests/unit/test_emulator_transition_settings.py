"""The emulator's endpoint transition window: its floor, how --time-scale stretches it, bad settings."""

from __future__ import annotations

import pytest

from include.sagemaker_emulator.__main__ import parse_args
from include.sagemaker_emulator.config import EmulatorConfig


def test_default_floor_is_visible_but_short(monkeypatch):
    monkeypatch.delenv("EMULATOR_MIN_TRANSITION_SECONDS", raising=False)
    monkeypatch.delenv("EMULATOR_TIME_SCALE", raising=False)
    config = parse_args([])
    assert config.time_scale == 0.0
    assert 0.1 <= config.min_transition_seconds <= 0.3
    # At the default time scale every endpoint transition lasts the floor.
    assert config.transition(240.0) == config.transition(30.0) == config.min_transition_seconds


def test_time_scale_stretches_beyond_the_floor():
    config = EmulatorConfig(time_scale=0.005, min_transition_seconds=0.2)
    assert config.transition(240.0) == pytest.approx(1.2)
    assert config.transition(30.0) == pytest.approx(0.2)  # 0.15 s scaled: the floor wins
    assert EmulatorConfig(min_transition_seconds=0.0).transition(240.0) == 0.0


def test_setting_from_flag_and_environment(monkeypatch):
    assert parse_args(["--min-transition-seconds", "0.5"]).min_transition_seconds == 0.5
    monkeypatch.setenv("EMULATOR_MIN_TRANSITION_SECONDS", "0")
    assert parse_args([]).min_transition_seconds == 0.0


@pytest.mark.parametrize("value", ["-0.1", "nan", "61"])
def test_bad_floor_is_refused_naming_the_setting(value, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--min-transition-seconds", value])
    assert "--min-transition-seconds" in capsys.readouterr().err
