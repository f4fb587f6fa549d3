"""The shipped sentiment models (VADER lexicon, SnowNLP) through the registry, and the eval command on the demo
evaluation set."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from voxdesk.cli import app
from voxdesk.registry import build_sentiment
from voxdesk.settings import Settings

pytestmark = pytest.mark.integration


def test_real_models_score_both_languages() -> None:
    scorer = build_sentiment(Settings())
    angry_zh = scorer.score("你们服务太差了，等了四十分钟还没人管，我要去金融监管总局投诉")
    assert angry_zh.dissatisfied and {"regulator", "anger"} <= {c.kind for c in angry_zh.cues}
    angry_en = scorer.score("this is absolutely unacceptable, I've been waiting for weeks")
    assert angry_en.dissatisfied and angry_en.model_score < 0
    assert not scorer.score("我想查一下信用卡账单").dissatisfied
    assert scorer.score("thank you so much, that was really helpful").label == "positive"


def test_eval_sentiment_command_reports_per_language() -> None:
    result = CliRunner().invoke(
        app, ["eval", "sentiment", "--data", "voxdesk/demo/sentiment_eval.csv", "--split", "test", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["n"] == 160 and summary["zh_n"] + summary["en_n"] == 160
    assert 0.0 <= summary["f1"] <= 1.0 and summary["p50_ms"] > 0
