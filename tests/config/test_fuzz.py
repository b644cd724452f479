"""Bad input never crashes: a fuzzer for the configuration reader.

Random bytes, random INI, every setting of the table with hostile values, very long lines, NUL
bytes and invalid UTF-8 go into mkosi.conf (and mkosi.conf.d/, mkosi.local.conf); the verbs
that read the configuration (`summary`, `--json summary`, now and then `plan`) run in-process.
Property: no traceback, exit status 0 or 1, and a refusal is exactly one `error:` line, with
file:line when it is about a line of a file.

500 inputs in CI; KOSI_FUZZ_EXAMPLES=10000 for the long run (bench/faults.py). With
KOSI_FUZZ_COUNT_FILE set, the number of inputs tried is added to that file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kosi import cli
from kosi.config.settings import SETTINGS

EXAMPLES = int(os.environ.get("KOSI_FUZZ_EXAMPLES", "500"))
LONG = EXAMPLES > 500
SECTIONS = sorted({s.section for s in SETTINGS} | {"Match", "TriggerMatch", "Config", "Host"})
NAMES = sorted({s.name for s in SETTINGS} | {n for s in SETTINGS for n in s.compat_names})
MATCH_NAMES = ["Distribution", "Release", "Architecture", "Format", "Image", "Environment", "PathExists",
               "Bootable", "ImageId", "ImageVersion", "SystemdVersion", "Host", "KernelCommandLine", "Profiles"]  # fmt: skip

#: values that have broken parsers elsewhere: empty, huge, negative, specifiers, globs, paths
#: out of the project, separators, quotes, escapes, control characters
HOSTILE = [
    "", " ", "yes", "no", "auto", "0", "-1", "1", "007", "0x10", "1e9", "nan", "inf", "-0",
    "99999999999999999999999999", "18446744073709551616", "1G", "1T", "1Q", "-1G", "1.5M", "4096K",
    "%", "%%", "%Z", "%d", "%a%b%c", "%{", "/", "//", "..", "../..", "../../../../etc/passwd",
    "/dev/null", "/proc/self/mem", "/nonexistent", "~", "~root", "$HOME", "${X}", "!", "!!", "!*",
    "*", "?", "[", "]", "[a-", "a:b", ":", "a:", ":b", "a:b:c", "=", "a=b", "a==b", ",", ",,",
    "a,b", "a b", "\t", "\\", "\\\\", "\\x00", '"', "'", '"a', "a\\", "#", ";", "@", "@foo",
    "-", "--", "--help", "x" * 300, "é", "\u202e", "\ufeff", "\x7f", "\x1b[31m", "\x01",
    "uuid", "random", "00000000-0000-0000-0000-000000000000", "0000", "abc-def",
    "1.2.3", ">=1", "<", "!=", "debian", "custom", "x86-64", "disk", "none", "root", "0644",
    "10000000000", "2000000000", "4294967296", "/var/tmp", "mkosi.conf", "-d",
]  # fmt: skip

value = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=4).map(lambda parts: " ".join(parts)),
    st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=4).map(lambda parts: ",".join(parts)),
)
key = st.one_of(st.sampled_from(NAMES), st.sampled_from(MATCH_NAMES), st.text(max_size=15))
line = st.one_of(
    st.builds(lambda s: f"[{s}]", st.one_of(st.sampled_from(SECTIONS), st.text(max_size=10))),
    st.builds(lambda k, v: f"{k}={v}", key, value),
    st.builds(lambda k, v: f"{k} = {v}", key, value),
    st.builds(lambda v: f"  {v}", value),  # a continuation line
    st.builds(lambda v: f"#{v}", value),
    st.builds(lambda k: f"{k}=!", key),
    st.text(max_size=40),
)
ini = st.lists(line, max_size=25).map(lambda lines: "\n".join(lines) + "\n")


@st.composite
def one_setting(draw) -> str:
    setting = draw(st.sampled_from(SETTINGS))
    header = draw(st.sampled_from([setting.section, setting.section, "Match"]))
    return f"[{header}]\n{setting.name}={draw(value)}\n"


def corrupt(text: str, draw) -> bytes:
    """UTF-8 with NUL bytes or invalid sequences put in at random places."""
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(data)))
        data[where:where] = draw(st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\x1a"]))
    return bytes(data)


@st.composite
def config_file(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "ini", "setting", "corrupt", "long"]))
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "ini":
        return draw(ini).encode()
    if kind == "setting":
        return draw(one_setting()).encode()
    if kind == "corrupt":
        return corrupt(draw(st.one_of(ini, one_setting())), draw)
    # very long lines: a value, a key, a section name, a continuation
    size = draw(st.sampled_from([4096, 65536, 1 << 20] if LONG else [4096, 65536]))
    setting = draw(st.sampled_from(SETTINGS))
    name, section = setting.name, setting.section
    return draw(
        st.sampled_from(
            [
                f"[{section}]\n{name}={'a' * size}\n".encode(),
                f"[{section}]\n{'K' * size}=1\n".encode(),
                f"[{'S' * size}]\n".encode(),
                (f"[{section}]\n{name}=a\n" + "  b\n" * (size // 64)).encode(),
                b"#" * size + b"\n",
                b"[Output]\nImageId=" + b"%" * size + b"\n",
            ]
        )
    )


@st.composite
def project_files(draw) -> dict[str, bytes]:
    files = {"mkosi.conf": draw(config_file())}
    if draw(st.integers(0, 4)) == 0:
        files[f"mkosi.conf.d/{draw(st.sampled_from(['10-a.conf', '20-b.conf', 'x']))}"] = draw(config_file())
    if draw(st.integers(0, 6)) == 0:
        files["mkosi.local.conf"] = draw(config_file())
    return files


def kosi(directory: Path, *argv: str) -> tuple[int, str]:
    """kosi's command line, in-process: (exit status, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(["-C", str(directory), *argv])
        except SystemExit as e:
            status = e.code
    return (status if isinstance(status, int) else 1), err.getvalue()


CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
LOCATED = re.compile(r"^error: [^:]+:\d+: ")
#: refusals about a file as a whole, not one of its lines
WHOLE_FILE = re.compile(r"^error: .*(not valid UTF-8|NUL|not a regular file|cannot read|too long|loop)", re.I)


def check(directory: Path, files: dict[str, bytes], argv: tuple[str, ...]) -> None:
    status, stderr = kosi(directory, *argv)
    shown = f"kosi {' '.join(argv)} on {files!r:.2000}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, shown
    assert status in (0, 1), shown
    lines = stderr.rstrip("\n").split("\n") if stderr else []
    assert not CONTROL.search(stderr.replace("\n", "")), shown  # escaped, not sent to the terminal
    unexpected = [line for line in lines if not line.startswith(("error: ", "warning: "))]
    assert not unexpected, shown
    errors = [line for line in lines if line.startswith("error: ")]
    if status == 0:
        assert not errors, shown
        return
    assert len(errors) == 1, shown
    assert len(errors[0]) < 1000, f"an error line of {len(errors[0])} characters: {shown:.3000}"
    if "mkosi.conf" in errors[0] or "mkosi.local.conf" in errors[0]:
        assert LOCATED.match(errors[0]) or WHOLE_FILE.match(errors[0]), shown


def write_project(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def count(n: int) -> None:
    target = os.environ.get("KOSI_FUZZ_COUNT_FILE")
    if target:
        with open(target, "a") as f:
            f.write(f"{n}\n")


VERBS = st.sampled_from([("summary",), ("--json", "summary")] * 9 + [("plan",)])


@example(files={"mkosi.conf": b"[Include]\nInclude=" + b"a" * 4096 + b"\n"}, argv=("summary",))  # ENAMETOOLONG
@example(files={"mkosi.conf": b"[Config]\nProfiles=" + b"a" * 4096 + b"\n"}, argv=("summary",))
@example(files={"mkosi.conf": b"[Validation]\nSecureBootKey=~ yes\n"}, argv=("summary",))  # no such user
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # CI draws the same 500 inputs every run (a red CI must mean a change broke something);
    # the long run (bench/faults.py) draws fresh ones to find new crashes.
    derandomize=not LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(files=project_files(), argv=VERBS)
def test_random_configuration_is_refused_in_one_line(files, argv):
    with tempfile.TemporaryDirectory(prefix="kosi-fuzz-") as tmp:
        write_project(Path(tmp), files)
        check(Path(tmp), files, argv)
    count(1)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_with_hostile_values(setting, tmp_path):
    """Each setting of the table with hostile values: 2 each, 20 in the long run (each value
    goes to every setting across the table)."""
    index = SETTINGS.index(setting)
    values = [HOSTILE[(index * 7 + k * 31) % len(HOSTILE)] for k in range(20 if LONG else 2)]
    for text in values:
        files = {"mkosi.conf": f"[{setting.section}]\n{setting.name}={text}\n".encode()}
        write_project(tmp_path, files)
        check(tmp_path, files, ("--json", "summary"))
    count(len(values))
