"""Generated cases: random combinations of settings and values drawn from kosi's settings table,
written to mkosi.conf (or given as command-line options), must give the same `--json summary`
from mkosi 27.1 and kosi, or be refused by both.

Deterministic (derandomized) and bounded so the compat suite stays within a few minutes; no
shrinking, since every example runs both tools: the failure report prints the whole example.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import harness
import pytest
from deviations import GENERATED_EXCLUSIONS, KOSI_ONLY_SETTINGS, PENDING_KEYS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from kosi.config import values as v
from kosi.config.settings import SETTINGS

EXAMPLES = 100
WORDS = ("foo", "bar-baz", "a.b", "x_1", "UPPER", "v2", "1")
BOOLEAN_SPELLINGS = ("yes", "no", "true", "false", "1", "0", "on", "off", "YES", "True", "y", "n")


def words(count: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(WORDS), min_size=1, max_size=count)


def value_strategy(kind: v.ValueType) -> st.SearchStrategy[str] | None:
    """Text assigning a value of `kind`, or None for types whose values need files or structure."""
    if isinstance(kind, v.ListOf):
        if type(kind.item) is v.String:
            separators = st.sampled_from(kind.split("a,b") == ["a", "b"] and (" ", ",", ", ", "\n  ") or (" ",))
            return st.tuples(words(), separators).map(lambda t: t[1].join(t[0]))
        if isinstance(kind.item, v.Choice):
            return st.lists(st.sampled_from(kind.item.choices), min_size=1, max_size=3).map(",".join)
        return None
    if isinstance(kind, v.Boolean):
        return st.sampled_from(BOOLEAN_SPELLINGS)
    if isinstance(kind, v.FeatureType):
        return st.sampled_from(("yes", "no", "auto", "enabled", "disabled"))
    if isinstance(kind, v.Choice):
        extra = ("yes", "no") if kind.booleans else ()
        return st.sampled_from(tuple(kind.choices) + extra)
    if isinstance(kind, v.IntegerOrWords):
        return st.one_of(st.sampled_from(tuple(kind.choices)), st.integers(kind.minimum or 0, 1000).map(str))
    if isinstance(kind, v.Integer):
        low = kind.minimum if kind.minimum is not None else 0
        high = kind.maximum if kind.maximum is not None else 100
        return st.integers(low, min(high, low + 64)).map(str)
    if isinstance(kind, v.Size):
        return st.tuples(st.integers(1, 64), st.sampled_from(("", "K", "M", "G"))).map(lambda t: f"{t[0]}{t[1]}")
    if isinstance(kind, v.UUIDOrRandom):
        return st.sampled_from(("random", "0c9d2d9a-2a6b-4c1e-9d0f-8a1b2c3d4e5f"))
    if isinstance(kind, v.Version):
        return st.sampled_from(("1", "1.2.3", "2~rc1"))
    if type(kind) is v.String:
        return st.sampled_from(WORDS)
    return None


#: settings a value can be generated for, with that strategy
GENERATABLE = [
    (s, strategy)
    for s in SETTINGS
    if not s.cli_only and s.name not in KOSI_ONLY_SETTINGS and (strategy := value_strategy(s.type)) is not None
]


@st.composite
def configurations(draw) -> harness.Case:
    chosen = draw(st.lists(st.sampled_from(GENERATABLE), min_size=1, max_size=6, unique_by=lambda t: t[0].name))
    sections: dict[str, list[str]] = {"Distribution": ["Distribution=debian", "Release=trixie"]}
    args: list[str] = []
    for setting, strategy in chosen:
        excluded = GENERATED_EXCLUSIONS.get(setting.name, (frozenset(), ""))[0]
        text = draw(strategy.filter(lambda t, excluded=excluded: t not in excluded))
        # an option with argparse choices (cli_choices) takes no other spelling, as mkosi 27.1
        cli_words = setting.cli_choices is None or all(w in setting.type.choices for w in text.split(","))
        on_command_line = setting.long is not None and "\n" not in text and cli_words and draw(st.booleans())
        if on_command_line:
            args.append(f"{setting.long}={text}")
        else:
            sections.setdefault(setting.section, []).append(f"{setting.name}={text}")
    conf = "\n".join(f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items())
    return harness.Case("generated", {"mkosi.conf": conf.encode()}, args)


@pytest.mark.parametrize("unused", [None])  # one test item; hypothesis draws the examples
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(case=configurations())
def test_generated(case: harness.Case, unused, mkosi_tool) -> None:
    with tempfile.TemporaryDirectory(prefix="kosi-compat-") as base:
        outcome = harness.compare(case, Path(base), mkosi_tool)
    example = f"mkosi.conf:\n{case.files['mkosi.conf'].decode()}args: {case.args}\n"
    assert "Traceback" not in outcome.kosi.stderr, example + outcome.kosi.stderr
    failed = (outcome.mkosi.status != 0, outcome.kosi.status != 0)
    assert failed[0] == failed[1], (
        example + f"mkosi exit {outcome.mkosi.status}: {outcome.mkosi.stderr.strip()[-600:]}\n"
        f"kosi exit {outcome.kosi.status}: {outcome.kosi.stderr.strip()[-600:]}"
    )
    if failed[0]:
        lines = [line for line in outcome.kosi.stderr.splitlines() if line.strip()]
        assert outcome.kosi.status == 1 and len(lines) == 1, example + outcome.kosi.stderr
        return
    unexpected = [d for d in outcome.diffs if harness.key_name(d[0]) not in PENDING_KEYS]
    assert not unexpected, example + harness.describe(unexpected)
