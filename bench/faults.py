#!/usr/bin/env python3
"""Fault injection: interrupt real builds and check that nothing is lost and nothing is left.

Each case builds an image once (its outputs are "the previous outputs"), then builds it again
and interrupts that build at one point of the pipeline:
- a script of the build (mkosi.prepare, mkosi.build, mkosi.postinst, mkosi.finalize,
  mkosi.postoutput) that starts a daemon out of kosi's session (setsid + double fork) and
  blocks: the build is interrupted once both processes run;
- a step seen in --log-json output (step-started), after a delay: the build is interrupted
  while that step's tools run (tar writing the output, apt and dpkg installing packages).
The interruption is Ctrl-C (SIGINT to kosi's process group), SIGTERM to kosi alone, or SIGKILL
to kosi alone followed by a rerun. After each:
- outputs lost: the previous outputs are not byte-identical;
- leftovers: a process of the build still running (its marker in /proc/*/cmdline, or its
  root or working directory in the workspace), a mount or loop device under the build's
  directories, a workspace (after SIGKILL: after the next build), a temporary file in the
  output directory;
- tracebacks: "Traceback" in kosi's stderr;
- the next build (without the blocking script) must succeed.
Then the long configuration fuzzer runs (tests/config/test_fuzz.py, KOSI_FUZZ_EXAMPLES).

Run under the image lock (it builds images):

    flock /tmp/kosi-image.lock python3 bench/faults.py [--only NAME] [--no-debian] [--fuzz N]

New cases: add a Case to CASES (or extend `blocking_script` / `project` for a new kind).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KOSI = REPO / "bin/kosi"
DEBIAN_CACHES = (
    Path("/var/tmp/kosi-test-pkgcache-pipeline/debian~trixie~amd64"),
    Path("/var/cache/kosi/packages/debian~trixie~amd64"),
)


@dataclass(frozen=True)
class Case:
    name: str
    signum: int
    point: str  # a script (mkosi.prepare, ...) that blocks, or "step:<name>" from --log-json
    kind: str = "custom"  # custom: Distribution=custom, seconds; debian: a real trixie image
    delay: float = 0.0  # after the step started, before the signal
    group: bool = False  # Ctrl-C: the whole foreground process group

    @property
    def label(self) -> str:
        how = "Ctrl-C" if self.group else signal.Signals(self.signum).name
        return f"{self.name}: {how}"


SCRIPTS = ("mkosi.prepare", "mkosi.build", "mkosi.postinst", "mkosi.finalize", "mkosi.postoutput")
CASES: list[Case] = [
    *(Case(script, signal.SIGINT, script, group=True) for script in SCRIPTS),
    *(Case(script, signal.SIGTERM, script) for script in SCRIPTS),
    *(Case(script, signal.SIGKILL, script) for script in SCRIPTS),
    *(
        Case("writing the output (tar)", signum, "step:write output", delay=0.3, group=signum == signal.SIGINT)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    ),
    *(
        Case(
            "installing packages (apt, dpkg)",
            signum,
            "step:install distribution and packages",
            "debian",
            4.0,
            group=signum == signal.SIGINT,
        )
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    ),  # fmt: skip
]


@dataclass
class Result:
    case: Case
    lost: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    tracebacks: int = 0
    failures: list[str] = field(default_factory=list)  # the next build, or the fault did not happen
    seconds: float = 0.0


def blocking_script(marker: str) -> str:
    return f"#!/bin/sh\nsetsid sh -c 'sleep {marker} & exit 0' </dev/null >/dev/null 2>&1\nexec sleep {marker}\n"


def project(root: Path, case: Case, marker: str | None, payload: int) -> Path:
    """The project in `root`/project; with `marker`, the case's blocking script is in place."""
    d = root / "project"
    (d / "mkosi.extra/usr/share/faults").mkdir(parents=True, exist_ok=True)
    (d / "mkosi.extra/usr/share/faults/payload").write_bytes(os.urandom(payload))
    common = (
        f"OutputDirectory={root / 'out'}\n\n[Build]\nWorkspaceDirectory={root / 'ws'}\n"
        f"CacheDirectory={root / 'cache'}\nPackageCacheDirectory={root / 'pkgcache'}\n"
    )
    if case.kind == "debian":
        conf = "[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Output]\nFormat=tar\nCompressOutput=no\n"
    else:
        conf = "[Distribution]\nDistribution=custom\n\n[Output]\nFormat=tar\nCompressOutput=no\n"
    (d / "mkosi.conf").write_text(conf + "ImageId=faults\n" + common)
    for script in SCRIPTS:
        (d / script).unlink(missing_ok=True)
    if marker and not case.point.startswith("step:"):
        (d / case.point).write_text(blocking_script(marker))
        (d / case.point).chmod(0o755)
    return d


def processes(marker: str, root: Path) -> list[str]:
    """Processes with the marker on their command line, or whose root or cwd is below `root`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            places = [os.readlink(f"/proc/{pid}/{link}") for link in ("root", "cwd")]
        except OSError:
            continue
        if marker.encode() in cmdline or any(p.startswith(str(root) + "/") for p in places):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"pid {pid}: {command[:80]}")
    return found


def mounts_and_loops(root: Path) -> list[str]:
    found = [f"mount {line.split()[4]}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
             if str(root) in line.split()[4]]  # fmt: skip
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    found += [f"loop device {line}" for line in loops.splitlines() if str(root) in line]
    return found


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()} if out.is_dir() else {}


def kosi(directory: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(KOSI), "-C", str(directory), *argv],
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
    )


def wait_for_point(build: subprocess.Popen, case: Case, marker: str, log_json: Path, timeout: float) -> str | None:
    """Wait until the build reaches the case's point; None when it did, else what went wrong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if build.poll() is not None:
            return f"the build ended (status {build.returncode}) before reaching {case.point}"
        if case.point.startswith("step:"):
            step = case.point.removeprefix("step:")
            events = log_json.read_text().splitlines() if log_json.exists() else []
            if any(json.loads(e).get("kind") == "step-started" and json.loads(e).get("step") == step for e in events):
                time.sleep(case.delay)
                return None if build.poll() is None else f"the build ended before the signal ({case.point})"
        else:
            sleeps = [p for p in processes(marker, Path("/nonexistent")) if f"sleep {marker}" in p]
            if len(sleeps) >= 2:
                return None
        time.sleep(0.05)
    return f"{case.point} not reached within {timeout:.0f} s"


def run_case(case: Case, root: Path) -> Result:
    result = Result(case)
    started = time.monotonic()
    marker = f"{7000 + os.getpid() % 1000}.{time.monotonic_ns() % 10**9}"
    payload = 200 << 20 if case.point == "step:write output" else 1 << 20
    if case.kind == "debian":
        for cache in DEBIAN_CACHES:
            if cache.is_dir():
                (root / "pkgcache").mkdir(parents=True, exist_ok=True)
                subprocess.run(["cp", "-a", "--reflink=auto", str(cache), str(root / "pkgcache")], check=True)
                break
    d = project(root, case, None, payload)
    first = kosi(d, "build")
    result.tracebacks += first.stderr.count("Traceback")
    if first.returncode != 0:
        result.failures.append(f"first build failed: {first.stderr.strip().splitlines()[-1:]}")
        return result
    out, ws = root / "out", root / "ws"
    before = snapshot(out)

    project(root, case, marker, payload + 1)  # a different image, if it were ever published
    log_json = root / "log.json"
    log_json.unlink(missing_ok=True)
    errors = (root / "stderr").open("w+")  # a file: a leftover process may hold it open forever
    build = subprocess.Popen(
        [sys.executable, str(KOSI), "-C", str(d), "--log-json", str(log_json), "-f", "build"],
        stdout=subprocess.DEVNULL,
        stderr=errors,
        start_new_session=True,  # like a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=dict(os.environ, NO_COLOR="1"),
    )
    try:
        problem = wait_for_point(build, case, marker, log_json, 600 if case.kind == "debian" else 120)
        if problem:
            result.failures.append(problem)
        elif case.group:
            os.killpg(build.pid, case.signum)
        else:
            build.send_signal(case.signum)
        build.wait(timeout=120)
    finally:
        if build.poll() is None:
            os.killpg(build.pid, signal.SIGKILL)
            build.wait()
        errors.seek(0)
        stderr = errors.read()
        errors.close()
    result.tracebacks += stderr.count("Traceback")
    expected = -signal.SIGKILL if case.signum == signal.SIGKILL else 128 + case.signum
    if not problem and build.returncode != expected:
        result.failures.append(f"interrupted build exited {build.returncode}, expected {expected}")

    if case.signum == signal.SIGKILL:  # the kernel takes the sandboxes down a moment later
        deadline = time.monotonic() + 10
        while processes(marker, ws) and time.monotonic() < deadline:
            time.sleep(0.1)
    result.leftovers += processes(marker, ws) + mounts_and_loops(root)
    if snapshot(out) != before:
        result.lost.append("outputs changed or lost")
    result.leftovers += [f"temporary file {p.name}" for p in out.iterdir() if p.name.startswith(".")]
    if case.signum != signal.SIGKILL and ws.exists():
        result.leftovers += [f"workspace {p}" for p in ws.iterdir()]

    project(root, case, None, payload + 2)
    again = kosi(d, "-f", "build")
    result.tracebacks += again.stderr.count("Traceback")
    if again.returncode != 0:
        result.failures.append(f"next build failed: {again.stderr.strip().splitlines()[-1:]}")
    if ws.exists():
        result.leftovers += [f"workspace after the next build {p}" for p in ws.iterdir()]
    result.leftovers += processes(marker, ws) + mounts_and_loops(root)
    result.seconds = time.monotonic() - started
    for leftover in processes(marker, ws):  # what kosi failed to stop, so that the next case starts clean
        os.kill(int(leftover.split()[1].rstrip(":")), signal.SIGKILL)
    return result


def run_fuzzer(examples: int) -> tuple[int, int, bool]:
    """The long fuzzer; returns (inputs tried, failing tests, passed)."""
    with tempfile.NamedTemporaryFile("r", prefix="kosi-fuzz-count-") as counts:
        env = dict(os.environ, KOSI_FUZZ_EXAMPLES=str(examples), KOSI_FUZZ_COUNT_FILE=counts.name)
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/config/test_fuzz.py"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        tried = sum(int(line) for line in Path(counts.name).read_text().split())
    if proc.returncode != 0:
        print("\n".join(line[:300] for line in proc.stdout.splitlines()[-80:]), file=sys.stderr)
    # a failing fuzz test is a crash (or a refusal that is not one line) that hypothesis found
    crashes = sum(1 for line in proc.stdout.splitlines() if line.startswith("FAILED "))
    return tried, crashes, proc.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--no-debian", action="store_true", help="skip the cases that build a Debian image")
    parser.add_argument("--fuzz", type=int, default=10000, help="fuzzer inputs (0: no fuzzing)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("faults.py builds images: run it as root (under the image lock)", file=sys.stderr)
        return 2
    cases = [c for c in CASES if (not args.only or args.only in c.name) and not (args.no_debian and c.kind == "debian")]
    results = []
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="kosi-faults-", dir="/var/tmp") as tmp:
            result = run_case(case, Path(tmp))
        results.append(result)
        verdict = "ok" if not (result.lost or result.leftovers or result.tracebacks or result.failures) else "FAILED"
        print(f"{verdict:6} {case.label:45} {result.seconds:6.1f}s", flush=True)
        for problem in result.lost + result.leftovers + result.failures:
            print(f"         {problem}", flush=True)
    tried, fuzz_failures, fuzz_ok = run_fuzzer(args.fuzz) if args.fuzz else (0, 0, True)

    rows = [
        ("faults tried", len(results)),
        ("outputs lost", sum(bool(r.lost) for r in results)),
        ("leftovers", sum(len(r.leftovers) for r in results)),
        ("tracebacks", sum(r.tracebacks for r in results)),
        ("next build or fault failed", sum(bool(r.failures) for r in results)),
        ("fuzz inputs tried", tried),
        ("fuzz tests failing (crash or not one line)", fuzz_failures if fuzz_ok or fuzz_failures else "?"),
    ]
    print()
    print("| what | count |\n| --- | --- |")
    for what, count in rows:
        print(f"| {what} | {count} |")
    bad = any(r.lost or r.leftovers or r.tracebacks or r.failures for r in results) or not fuzz_ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
