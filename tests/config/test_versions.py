import pytest

from kosi.config.versions import compare_versions, split_operator, version_matches


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("1", "2", -1), ("1.0", "1.0", 0), ("1.0", "1.0.1", -1), ("1.0~rc1", "1.0", -1), ("1.0~rc1", "1.0~rc2", -1),
        ("1.0^", "1.0", 1), ("1.0^", "1.0.1", -1), ("11", "123", -1), ("1.0-1", "1.0.1", -1), ("a", "1", -1),
        ("252", "252.39-1~deb12u1", -1), ("26.0", "26", 1), ("0010", "10", 0), ("1.a", "1.b", -1), ("", "1", -1),
    ],
)  # fmt: skip
def test_order(a, b, expected):
    assert compare_versions(a, b) == expected
    assert compare_versions(b, a) == -expected


@pytest.mark.parametrize(
    "actual,condition,result",
    [("254", ">=254", True), ("253", ">=254", False), ("254", "254", True), ("254", "!=254", False),
     ("1.2", "<1.10", True), ("1.2", ">1.10", False), ("1.2", "<=1.2", True), ("1.2", "==1.2", True)],
)  # fmt: skip
def test_rich_comparison(actual, condition, result):
    assert version_matches(actual, condition) is result


def test_split_operator_defaults_to_equality():
    assert split_operator("1.2") == ("==", "1.2")
    assert split_operator(">= 3") == (">=", "3")
