"""Stale mirrors (Release files past Valid-Until): which repositories, and the warning's words."""

from __future__ import annotations

import time

from kosi.installers import apt_release

NOW = 1_800_000_000.0


def release(valid_until: float | None) -> str:
    lines = [
        "Origin: Debian",
        "Suite: trixie",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime(NOW - 30 * 86400))}",
    ]
    if valid_until is not None:
        lines.append(f"Valid-Until: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime(valid_until))}")
    return "\n".join(lines) + "\n"


def test_expired_repositories_are_named_with_their_age(tmp_path):
    (tmp_path / "m.example_debian_dists_trixie_InRelease").write_text(release(NOW - 3 * 86400 - 7200))
    (tmp_path / "m.example_debian_dists_trixie-updates_InRelease").write_text(release(NOW + 86400))
    (tmp_path / "m.example_debian-security_dists_trixie-security_Release").write_text(release(None))
    (tmp_path / "snap.example_archive_dists_trixie_InRelease").write_text(release(NOW - 400 * 86400))
    output = "\n".join(
        f"{tmp_path}/{prefix}main_binary-amd64_Packages\t{uri}\t{suite}\tmain/binary-amd64/Packages"
        for prefix, uri, suite in (
            ("m.example_debian_dists_trixie_", "http://m.example/debian/", "trixie"),
            ("m.example_debian_dists_trixie-updates_", "http://m.example/debian/", "trixie-updates"),
            (
                "m.example_debian-security_dists_trixie-security_",
                "http://m.example/debian-security/",
                "trixie-security",
            ),
            ("snap.example_archive_dists_trixie_", "http://snap.example/archive/", "trixie"),
        )
    )
    stale = apt_release.expired(output, tmp_path, NOW, exempt={("http://snap.example/archive", "trixie")})
    assert [(s.uri, s.suite) for s in stale] == [("http://m.example/debian/", "trixie")]
    assert stale[0].message() == (
        "repository http://m.example/debian trixie: its Release file expired 3 days ago "
        "(a stale mirror?); building from it anyway, as mkosi does"
    )


def test_ages():
    assert apt_release.format_age(59) == "0 minutes"
    assert apt_release.format_age(61) == "1 minute"
    assert apt_release.format_age(2 * 3600 + 5) == "2 hours"
    assert apt_release.format_age(86400) == "1 day"


def test_valid_until_parsing():
    assert apt_release.valid_until(release(NOW)) == NOW
    assert apt_release.valid_until(release(None)) is None
    assert apt_release.valid_until("Valid-Until: garbage\n") is None
