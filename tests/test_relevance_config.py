"""``config/relevance.yaml``, its loader and a channel's partial overrides: every rule is checked,
on the file and on the merged result, with the source named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.relevance import DEFAULT_RELEVANCE_PATH, load_relevance, relevance_for_channel
from config.templates import load_all
from models.relevance import RelevanceConfig, RelevanceOverrides
from models.relevance_scoring import Decision
from relevance.score import decide
from relevance import RelevanceConfigError, apply_overrides, parse_overrides


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "relevance.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_file_holds_the_seed_defaults_the_models_declare():
    config = load_relevance()
    assert config == RelevanceConfig()
    assert (config.weights.expertise_match, config.weights.conversation_gap, config.weights.workload_capacity,
            config.weights.recent_participation, config.weights.timing_appropriateness,
            config.weights.relationship_trust) == (0.30, 0.25, 0.20, 0.15, 0.10, 0.0)
    assert (config.thresholds.observe, config.thresholds.intervene, config.thresholds.high_priority) == (0.2, 0.5, 0.8)
    assert config.factors.workload_capacity.max_concurrent_tasks == 3
    assert config.factors.recent_participation.cooldown_minutes == 30


def test_weights_that_do_not_sum_to_one_are_refused_naming_the_file_and_the_sum(tmp_path):
    data = yaml.safe_load(DEFAULT_RELEVANCE_PATH.read_text())
    data["weights"]["expertise_match"] = 0.35
    path = write(tmp_path, data)
    with pytest.raises(RelevanceConfigError) as caught:
        load_relevance(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: weights: they sum to 1.05 ")
    assert "expertise_match 0.35 + conversation_gap 0.25" in message and message.endswith("weights must sum to 1")


def test_an_override_that_breaks_the_sum_is_refused_naming_the_channel():
    with pytest.raises(RelevanceConfigError) as caught:
        relevance_for_channel("ops", {"weights": {"expertise_match": 0.5}})
    assert str(caught.value).startswith("relevance overrides of channel ops: weights: they sum to 1.2 ")


def test_an_override_changes_only_what_it_names():
    config = relevance_for_channel("ops", {"thresholds": {"intervene": 0.6}, "factors": {"workload_capacity": {
        "max_concurrent_tasks": 5}}, "weights": {"expertise_match": 0.4, "relationship_trust": None,
                                                  "timing_appropriateness": 0.0}})
    defaults = RelevanceConfig()
    assert config.thresholds.intervene == 0.6 and config.thresholds.observe == defaults.thresholds.observe
    assert config.factors.workload_capacity.max_concurrent_tasks == 5
    assert config.factors.recent_participation == defaults.factors.recent_participation
    assert (config.weights.expertise_match, config.weights.timing_appropriateness, config.weights.relationship_trust) == (
        0.4, 0.0, 0.0)
    assert relevance_for_channel("ops", None) == defaults


@pytest.mark.parametrize(
    ("override", "complaint"),
    [({"thresholds": {"observe": 0.6}}, "thresholds: observe <= intervene <= high_priority must hold, got observe 0.6"),
     ({"thresholds": {"reflect": 0.3}}, "reflect (0.3) must not be below intervene (0.5)"),
     ({"factors": {"expertise_match": {"full_similarity": 0.1}}}, "expertise_match: the lower bound 0.15 must be below"),
     ({"factors": {"expertise_mach": {}}}, "factors.expertise_mach: Extra inputs are not permitted"),
     ({"addressed_boost": 2}, "addressed_boost: Input should be less than or equal to 1"),
     ({"weights": {"expertise_match": "lots"}}, "weights.expertise_match: Input should be a valid number"),
     ({"factors": {"workload_capacity": {"max_concurrent_tasks": 0}}}, "max_concurrent_tasks: Input should be greater")],
)
def test_every_rule_holds_for_overrides_as_for_the_file(override, complaint):
    with pytest.raises(RelevanceConfigError, match="relevance overrides of channel c") as caught:
        relevance_for_channel("c", override)
    assert complaint in str(caught.value)


def test_a_broken_file_says_what_is_wrong(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RelevanceConfigError, match="cannot read relevance configuration"):
        load_relevance(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("weights: [", encoding="utf-8")
    with pytest.raises(RelevanceConfigError, match="is not valid YAML"):
        load_relevance(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(RelevanceConfigError, match="expected a mapping of relevance settings, got list"):
        load_relevance(listed)


def test_overrides_are_a_typed_partial_model_with_a_json_schema():
    overrides = parse_overrides({"thresholds": {"intervene": 0.55}}, "api")
    assert isinstance(overrides, RelevanceOverrides)
    assert apply_overrides(RelevanceConfig(), overrides, "api").thresholds.intervene == 0.55
    schema = RelevanceOverrides.model_json_schema()
    assert "thresholds" in schema["properties"] and schema.get("additionalProperties") is False


def test_the_reflect_decision_is_off_by_default_and_above_intervene_when_set():
    """From ``thresholds.reflect`` an agent reflects (it speaks after a deepthink) instead of intervening."""
    assert Decision("reflect") is Decision.REFLECT
    assert RelevanceConfig().thresholds.reflect is None
    thresholds = relevance_for_channel("c", {"thresholds": {"reflect": 0.7}}).thresholds
    assert [decide(s, thresholds) for s in (0.1, 0.3, 0.6, 0.7, 0.95)] == [
        Decision.IGNORE, Decision.OBSERVE, Decision.INTERVENE, Decision.REFLECT, Decision.REFLECT]


def test_every_builtin_agent_lists_its_expertise():
    templates = {t.name: t for t in load_all()}
    assert set(templates) >= {"assistant", "developer", "analyst", "moderator"}
    for template in templates.values():
        assert template.expertise and all(entry.strip() for entry in template.expertise), template.name
