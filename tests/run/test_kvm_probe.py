"""The KVM probe, run for real on this machine."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from kosi.run import kvm

pytestmark = pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="qemu-system-x86_64 is not installed")


def test_probe_payload_runs_to_its_end_under_tcg():
    # The payload itself is sound, so a KVM failure of the probe is the hypervisor's doing.
    ok, reason = kvm.run_probe("qemu-system-x86_64", "q35,smm=on", accel="tcg")
    assert (ok, reason) == (True, "")


def test_probe_gives_a_verdict_with_one_line_reason_and_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    verdict = kvm.probe_kvm(use_cache=False)
    if not os.path.exists("/dev/kvm"):
        assert not verdict.usable and "does not exist" in verdict.reason
        return
    if verdict.usable and verdict.smm:
        assert verdict.reason == ""
    else:
        assert verdict.reason and "\n" not in verdict.reason
        assert not verdict.smm
    cached = json.loads((tmp_path / "kosi/kvm-probe.json").read_text())
    assert cached["verdict"] == verdict.to_json()
    assert kvm.probe_kvm() == verdict  # served from the cache (same boot, kernel and qemu)
    cached["key"] = "another boot"
    cached["verdict"]["reason"] = "stale"
    (tmp_path / "kosi/kvm-probe.json").write_text(json.dumps(cached))
    assert kvm.probe_kvm().reason != "stale"


def test_probe_on_this_host_matches_running_real_firmware_under_kvm(tmp_path):
    """Cross-check with OVMF itself: when the probe says KVM is unusable, OVMF must fail too."""
    if not os.path.exists("/dev/kvm") or not os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"):
        pytest.skip("needs /dev/kvm and OVMF")
    verdict = kvm.probe_kvm(use_cache=False)
    import subprocess

    vars_copy = tmp_path / "vars.fd"
    shutil.copyfile("/usr/share/OVMF/OVMF_VARS_4M.fd", vars_copy)
    proc = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-accel",
            "kvm",
            "-machine",
            "q35",
            "-cpu",
            "host",
            "-m",
            "256",
            "-display",
            "none",
            "-nodefaults",
            "-serial",
            "none",
            "-monitor",
            "none",
            "-drive",
            "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
            "-drive",
            f"if=pflash,format=raw,file={vars_copy}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=4)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    failed = any(m.encode() in err for m in kvm.FAILURE_MARKERS)
    assert failed == (not verdict.usable), err.decode(errors="replace")[:300]
