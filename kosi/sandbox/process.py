"""Running one command: debug logging, live output, and failures as one readable line.

A failing tool is reported by its name and its own last error line ("apt-get failed: E: Unable
to locate package foo"), not by its 40-argument command line. That line is only known when
stderr was captured: pass `stderr=subprocess.PIPE` to capture it silently, or `tee_stderr=True`
to show it live *and* keep it (what apt, dpkg and systemd-repart want).
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

from kosi import log
from kosi.errors import KosiError
from kosi.tools.packages import missing_program

# Lines that look like a tool's own error message, strongest first, preferred over whatever was
# printed last (apt prints "E: ..." and then hints; dpkg prints "dpkg: error ..." and then a summary).
ERROR_PATTERNS = (
    re.compile(r"^E: "),
    re.compile(r"^(\S+: )?(error|fatal|ERROR|FATAL|Error|Fatal)\b"),
    re.compile(r"\b(error|failed|fatal|not found|no such file or directory|permission denied|cannot)\b", re.IGNORECASE),
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SANDBOX_EXIT = {
    125: "the sandbox could not be set up",
    126: "the command could not be executed",
    127: "command not found",
}


def last_error_line(text: str | bytes | None) -> str | None:
    """The line of a tool's stderr that best explains its failure."""
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ANSI.sub("", line).strip() for line in text.replace("\r", "\n").splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("-=*#.~ ")]
    if not lines:
        return None
    tail = lines[-20:]
    for pattern in ERROR_PATTERNS:
        for line in reversed(tail):
            if pattern.search(line):
                return line[:400]
    return tail[-1][:400]


def tool_name(cmd: Sequence[str | Path]) -> str:
    """The program a command line runs, skipping wrappers that only set things up."""
    args = [str(a) for a in cmd]
    while args and Path(args[0]).name in ("env", "setpriv", "unshare", "nice", "ionice", "stdbuf"):
        args = args[1:]
        while args and (args[0].startswith("-") or "=" in args[0]):
            args = args[1:]
    return Path(args[0]).name if args else "command"


def failure_message(cmd: Sequence[str | Path], returncode: int, stderr: str | bytes | None) -> str:
    name = tool_name(cmd)
    if returncode < 0:
        try:
            status = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            status = f"was killed by signal {-returncode}"
    else:
        status = f"failed with exit status {returncode}"
    line = last_error_line(stderr)
    if line:
        return f"{name} {status}: {line}"
    if returncode in SANDBOX_EXIT:
        return f"{name} {status} ({SANDBOX_EXIT[returncode]})"
    return f"{name} {status}"


class _Tee(threading.Thread):
    """Copies a child's stderr to ours line by line while keeping the last lines (to the
    running build step's chatter instead, see log.chatter)."""

    def __init__(self, stream: IO[bytes], keep: int = 200):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: collections.deque[bytes] = collections.deque(maxlen=keep)
        self.sink = log.chatter_sink()

    def run(self) -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        for line in iter(self.stream.readline, b""):
            self.lines.append(line)
            if self.sink is not None:
                self.sink.append(line)
            elif out is not None:
                out.write(line)
                out.flush()
            else:
                sys.stderr.write(line.decode(errors="replace"))
        self.stream.close()

    def text(self) -> bytes:
        return b"".join(self.lines)


def run(
    cmd: Sequence[str | Path],
    *,
    sandbox: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    stdout=None,
    stderr=None,
    check: bool = True,
    cwd: Path | None = None,
    tee_stderr: bool = False,
    chatter: bool = True,
) -> subprocess.CompletedProcess:
    """Run `cmd` (after the `sandbox` prefix). Output goes where it normally would unless
    `stdout`/`stderr` say otherwise; with `tee_stderr` stderr is shown live and also returned
    (as bytes, or str when `input` is str). A failure with `check` raises KosiError; Ctrl-C
    kills the command and propagates. Inside a build step, output left to the terminal is
    collected as the step's chatter (log.chatter) unless `chatter` is False (scripts the user
    wrote: their output is theirs to show)."""
    words = [str(a) for a in cmd]
    argv = [*sandbox, *words]
    log.debug("+ " + shlex.join(words))
    text = isinstance(input, str) or None
    if tee_stderr and stderr is not None:
        raise ValueError("tee_stderr and stderr cannot be combined")
    try:
        if tee_stderr:
            result = _run_teeing(argv, env=env, input=input, stdout=stdout, cwd=cwd, text=bool(text))
        else:
            result = _run_collecting(
                argv,
                env=env,
                input=input,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                text=text,
                sink=log.chatter_sink() if chatter else None,
            )
    except FileNotFoundError:
        raise KosiError(missing_program(tool_name(cmd))) from None
    result.args = words
    if check and result.returncode != 0:
        if result.returncode == 127 and sandbox and not_in_sandbox(sandbox, words[0]):
            raise KosiError(missing_program(words[0], sandbox_tools(sandbox)))
        raise KosiError(failure_message(cmd, result.returncode, result.stderr))
    return result


def sandbox_tools(sandbox: Sequence[str]) -> Path | None:
    """The tools tree a sandbox prefix gives its commands (--usr TREE/usr), None for the host's."""
    words = list(sandbox)
    if "--usr" in words[:-1]:
        return Path(words[words.index("--usr") + 1]).parent
    return None


def not_in_sandbox(sandbox: Sequence[str], program: str) -> bool:
    """Whether the sandbox's /usr (or image root) lacks `program` (exit status 127 is then ours)."""
    words = list(sandbox)
    if "--root" in words[:-1]:
        usr = Path(words[words.index("--root") + 1]) / "usr"
    else:
        tools = sandbox_tools(sandbox)
        usr = tools / "usr" if tools else Path("/usr")
    if program.startswith("/"):
        return not (usr.parent / program.lstrip("/")).exists() and not Path(program).exists()
    return not any((usr / directory / program).exists() for directory in ("bin", "sbin", "lib/systemd"))


def _run_collecting(
    argv: list[str], *, env, input, stdout, stderr, cwd, text, sink: list[bytes] | None
) -> subprocess.CompletedProcess:
    """subprocess.run, with what would reach the terminal collected into `sink` (when given):
    the collected text is also the result's stderr when the caller did not capture it, so a
    failure is still explained by the tool's own error line."""
    if sink is None or (stdout is not None and stderr is not None):
        return _communicate(argv, env=env, input=input, stdout=stdout, stderr=stderr, cwd=cwd, text=text)
    if stdout is None and stderr is None:
        result = _communicate(
            argv, env=env, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, text=text
        )
        collected, result.stdout = result.stdout, None
        result.stderr = collected
    elif stderr is None:
        result = _communicate(argv, env=env, input=input, stdout=stdout, stderr=subprocess.PIPE, cwd=cwd, text=text)
        collected = result.stderr
    else:
        result = _communicate(argv, env=env, input=input, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, text=text)
        collected, result.stdout = result.stdout, None
    if collected:
        sink.append(collected.encode() if isinstance(collected, str) else collected)
    return result


#: how long an interrupted command (for a sandbox: its whole process tree) may take to stop
STOP_TIMEOUT = 15


def stop(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
    """Stop `process` and wait for it: SIGTERM, then SIGKILL when it takes longer than
    `timeout`. A sandbox (kosi.sandbox.enter) passes SIGTERM on and, when this process has
    seen a second signal (Ctrl-C reaches it too) or after its grace time, kills its whole PID
    namespace; it exits only when the last process in there is gone. Without waiting, the
    caller would remove a workspace that tools are still writing into."""
    if process.poll() is not None:
        return
    try:
        process.terminate()
        process.wait(timeout=timeout)
    except BaseException:  # too slow, or a second Ctrl-C while waiting: do not wait any longer than needed
        process.kill()
        process.wait()
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise


@contextmanager
def interrupt_after_start() -> Iterator[None]:
    """Hold back a Ctrl-C (SIGINT) that arrives while a child is started until Popen returned:
    raised inside Popen, it would leave the child running with nobody to stop it (the caller
    never learns its pid). Use it inside the caller's try that stops the child. Only the main
    thread receives signals, so only it holds them back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # not installed from Python: leave it alone
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:  # as if it came now, to whatever handled it before (the caller's try stops the child)
            signal.raise_signal(signal.SIGINT)


def _communicate(argv: list[str], *, input, **popen) -> subprocess.CompletedProcess:
    """subprocess.run without its SIGKILL on Ctrl-C: the command (a sandbox: all it started)
    is stopped and waited for (see stop)."""
    process = None
    try:
        with interrupt_after_start():
            process = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else None, **popen)
        out, err = process.communicate(input)
    except BaseException:
        if process is not None:
            stop(process)
        raise
    finally:
        for stream in (process.stdin, process.stdout, process.stderr) if process is not None else ():
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _run_teeing(argv: list[str], *, env, input, stdout, cwd, text: bool) -> subprocess.CompletedProcess:
    process: subprocess.Popen | None = None
    try:
        with interrupt_after_start():
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.PIPE if input is not None else None,
                stdout=stdout,
                stderr=subprocess.PIPE,
            )
        assert process.stderr is not None  # stderr=PIPE
        tee = _Tee(process.stderr)
        # Started inside the try: once the tee shows the child's first line, a Ctrl-C may
        # arrive at any moment and must still kill the child.
        tee.start()
        if input is not None:
            data = input.encode() if isinstance(input, str) else input
            writer = threading.Thread(target=_feed, args=(process.stdin, data), daemon=True)
            writer.start()
        out = process.stdout.read() if process.stdout is not None else None
        returncode = process.wait()
        tee.join()
    except BaseException:
        if process is not None:
            stop(process)
        raise
    finally:
        if process is not None and process.stdout is not None:
            process.stdout.close()
    if text:
        return subprocess.CompletedProcess(
            argv,
            returncode,
            out.decode(errors="replace") if out is not None else None,
            tee.text().decode(errors="replace"),
        )
    return subprocess.CompletedProcess(argv, returncode, out, tee.text())


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except BrokenPipeError:
        pass
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            pass


PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Make kosi the parent of whatever its children leave orphaned: a sandbox's init whose
    supervisor was killed (subprocess.run kills with SIGKILL on Ctrl-C) is then ours to wait for,
    see wait_for_sandboxes."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _orphaned_sandboxes() -> list[int]:
    """Our children that are the init of a PID namespace (adopted after their supervisor died)."""
    me = str(os.getpid())
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        nspid = fields.get("NSpid", "").split()
        if fields.get("PPid", "").strip() == me and len(nspid) > 1 and nspid[-1] == "1":
            found.append(int(pid))
    return found


def wait_for_sandboxes() -> None:
    """Kill and wait for orphaned sandboxes: when an init has been reaped, the kernel has
    killed everything else in its namespace and it is gone too."""
    for pid in _orphaned_sandboxes():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
