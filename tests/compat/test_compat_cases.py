"""Every hand-written case under tests/compat/cases: mkosi 27.1 and kosi print the same
`--json summary` (or both refuse the configuration). See harness.py for the case layout."""

from __future__ import annotations

import re
from pathlib import Path

import harness
import pytest
from deviations import DEVIATIONS, GENERATED_EXCLUSIONS, KOSI_ONLY_SETTINGS, PENDING_CASES, PENDING_KEYS

COMPATIBILITY_DOC = harness.REPO / "docs/compatibility.md"


@pytest.mark.parametrize("directory", harness.all_cases(), ids=lambda p: p.relative_to(harness.CASES).as_posix())
def test_case(directory: Path, case_outcomes) -> None:
    case = harness.Case.load(directory)
    outcome = case_outcomes[case.name]
    deviation = DEVIATIONS.get(case.name)
    if deviation is None:
        harness.RESULTS[case.name] = "equal" if outcome.equal else "different"
        if outcome.equal and outcome.default_initrd:  # equal but for harness.DEFAULT_INITRD_DOC
            harness.RESULTS[case.name] = "deviation"
        assert not (outcome.equal and case.name in PENDING_CASES), (
            f"{case.name} is equal now: remove it from PENDING_CASES in deviations.py"
        )
        if not outcome.equal and case.name in PENDING_CASES:
            harness.RESULTS[case.name] = "pending"
            pytest.xfail(f"pending kosi fix: {PENDING_CASES[case.name]}\n" + outcome.report())
        keys = {harness.key_name(path) for path, _, _ in outcome.diffs}
        if not outcome.problems and outcome.diffs and keys <= PENDING_KEYS:
            harness.RESULTS[case.name] = "pending"
            pytest.xfail(f"differs only in keys pending a fix: {sorted(keys)}")
        assert outcome.equal, outcome.report()
        return
    harness.RESULTS[case.name] = "different"
    assert not outcome.problems, outcome.report()
    assert {path for path, _, _ in outcome.diffs} == set(deviation.keys), (
        f"{case.name} is a documented deviation ({deviation.doc}) differing in {sorted(deviation.keys)}; "
        f"now it differs in:\n" + outcome.report() + "\n(update or remove the entry in deviations.py)"
    )
    harness.RESULTS[case.name] = "deviation"


def test_deviations_are_documented() -> None:
    """Each deviation names an existing case and a heading of docs/compatibility.md."""
    names = {p.relative_to(harness.CASES).as_posix() for p in harness.all_cases()}
    headings = set(re.findall(r"^#+\s*(.+?)\s*$", COMPATIBILITY_DOC.read_text(), re.MULTILINE))
    assert harness.DEFAULT_INITRD_DOC in headings
    for name, deviation in DEVIATIONS.items():
        assert name in names, f"deviations.py names {name}, which is no case"
        assert deviation.doc in headings, f"{name}: docs/compatibility.md has no heading {deviation.doc!r}"
        assert deviation.keys, f"{name}: a deviation lists the keys that differ"
    for name, heading in [*KOSI_ONLY_SETTINGS.items(), *((n, h) for n, (_, h) in GENERATED_EXCLUSIONS.items())]:
        assert heading in headings, f"{name}: docs/compatibility.md has no heading {heading!r}"
