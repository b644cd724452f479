"""Value types: parsing good and bad input, errors that name the setting, JSON round trips."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from kosi.config.values import (
    Assignments,
    Boolean,
    Choice,
    CredentialsValue,
    DelayedPath,
    Drive,
    DriveValue,
    Feature,
    FeatureType,
    FileName,
    Integer,
    IntegerOrWords,
    KeyPath,
    KeySource,
    KeySourceType,
    ListOf,
    Mode,
    Origin,
    PathOrWords,
    PathValue,
    Size,
    String,
    Tree,
    TreeValue,
    UUIDOrRandom,
    Version,
)
from kosi.errors import KosiError

HERE = Origin(file="/p/mkosi.conf", line=7, directory=Path("/p"))


def parse(value_type, text, origin=HERE):
    return value_type.parse("Setting", text, origin)


@pytest.mark.parametrize("text", ["1", "yes", "y", "true", "t", "on", "YES", " True "])
def test_boolean_true_spellings(text):
    assert parse(Boolean(), text) is True


@pytest.mark.parametrize("text", ["0", "no", "n", "false", "f", "off", "No"])
def test_boolean_false_spellings(text):
    assert parse(Boolean(), text) is False


@pytest.mark.parametrize("text", ["enable", "enabled", "disable", "Disabled", "maybe"])
def test_boolean_spellings_mkosi_refuses(text):
    with pytest.raises(KosiError):
        parse(Boolean(), text)


@pytest.mark.parametrize(
    "value_type, text, allowed",
    [
        (Boolean(), "maybe", "a boolean"),
        (FeatureType(), "sometimes", "a boolean, 'enabled', 'disabled' or 'auto'"),
        (Choice("qemu", "vmspawn"), "kvmtool", "one of qemu, vmspawn"),
        (Choice("always", "never", booleans=("always", "never")), "perhaps", "one of always, never or a boolean"),
        (Size(), "10X", "a size in bytes"),
        (Size(), "-1G", "a size in bytes"),
        (UUIDOrRandom(), "not-a-uuid", "a UUID or 'random'"),
        (Mode(), "0999", "an octal access mode"),
        (Mode(), "17777", "an octal access mode"),
        (Mode(), "4755", "between 0 and 1777"),  # as mkosi 27.1: no set-user-ID bit
        (Integer(), "0x10", "an integer"),  # decimal only, as mkosi 27.1
        (Integer(), "0o17", "an integer"),
        (Integer(1), "0", "an integer of at least 1"),
        (Integer(), "two", "an integer"),
        (IntegerOrWords("hash", "auto", minimum=3, maximum=0xFFFFFFFE), "2", "between 3 and"),
        (IntegerOrWords("hash", "auto", minimum=3, maximum=0xFFFFFFFE), "random", "or one of hash, auto"),
        (Version(), "1 2", "a version without whitespace"),
        (FileName(), "a/b", "a file name without '/'"),
        (KeySourceType(), "tpm", "'file', 'engine:NAME' or 'provider:NAME'"),
        (KeySourceType(), "engine:", "'engine:NAME'"),
        (KeySourceType(engines=False), "engine:pkcs11", "'file', 'provider:NAME'"),
        (DriveValue(), "justanid", "ID:SIZE"),
        (DriveValue(), "d:1G::::fast", "persist"),
        (DriveValue(), "d:huge", "a size in bytes"),
        (ListOf(Choice("json", "changelog")), "json,xml", "one of json, changelog"),
        (Assignments(), "1BAD=x", "NAME=VALUE"),
        (Assignments(passthrough=False), "ID", "KEY=VALUE"),
        (Assignments(), "A='unterminated", "NAME=VALUE"),
    ],
)  # fmt: skip
def test_bad_values_name_setting_location_and_what_is_allowed(value_type, text, allowed):
    with pytest.raises(KosiError) as e:
        parse(value_type, text)
    message = str(e.value)
    assert message.startswith("/p/mkosi.conf:7: Setting=")
    assert allowed in message
    assert "\n" not in message


def test_feature():
    assert parse(FeatureType(), "auto") is Feature.auto
    assert parse(FeatureType(), "yes") is Feature.enabled
    assert parse(FeatureType(), "off") is Feature.disabled
    assert parse(FeatureType(), "enabled") is Feature.enabled and parse(FeatureType(), "disabled") is Feature.disabled
    for refused in ("Auto", "Enabled", "enable"):  # as mkosi 27.1
        with pytest.raises(KosiError):
            parse(FeatureType(), refused)
    with pytest.raises(TypeError):
        bool(Feature.auto)  # auto must be resolved explicitly


def test_choice_aliases_and_booleans():
    compress = Choice("none", "zstd", "xz", aliases={"zst": "zstd"}, booleans=("zstd", "none"))
    assert [parse(compress, w) for w in ("xz", "zst", "yes", "no", "none")] == ["xz", "zstd", "zstd", "none", "none"]


@pytest.mark.parametrize(
    "text, size",
    [("512", 4096), ("4K", 4096), ("2M", 2 * 1024**2), ("2G", 2 * 1024**3), ("2 G", 2 * 1024**3), ("1e3", 4096),
     ("1_000K", 1024000), ("1.5G", 3 * 512 * 1024**2), ("5000", 8192), ("0.5K", 4096), (".5G", 512 * 1024**2)],
)  # fmt: skip
def test_sizes(text, size):
    assert parse(Size(), text) == size


@pytest.mark.parametrize("text", ["3g", "2k", "1T", "8KiB", "10GB", "2B", "0", "0K", "-1", "inf", "nan", "", "G"])
def test_sizes_mkosi_refuses(text):
    with pytest.raises(KosiError):
        parse(Size(), text)


def test_mode_uuid_integers_versions():
    assert parse(Mode(), "0644") == 0o644
    assert parse(Mode(), "600") == 0o600
    assert uuid.UUID(parse(UUIDOrRandom(), "random"))  # drawn while parsing, as mkosi
    assert parse(UUIDOrRandom(), "0A9F1E0C-5D0E-4B8A-9E3D-1A2B3C4D5E6F") == "0a9f1e0c-5d0e-4b8a-9e3d-1a2b3c4d5e6f"
    cid = IntegerOrWords("hash", "auto", minimum=3, maximum=0xFFFFFFFE)
    assert parse(cid, "hash") == "hash" and parse(cid, "042") == 42 and parse(cid, "1_000") == 1000
    assert parse(Integer(0), "1700000000") == 1700000000
    assert parse(Version(), "1.2~rc1") == "1.2~rc1"


def test_paths_are_relative_to_the_file_and_may_be_required(tmp_path):
    (tmp_path / "tree").mkdir()
    origin = Origin(file=str(tmp_path / "mkosi.conf"), line=3, directory=tmp_path)
    assert parse(PathValue(), "tree", origin) == tmp_path / "tree"
    assert parse(PathValue(), "./sub/../tree", origin) == tmp_path / "tree"
    assert parse(PathValue(required=False), "missing", origin) == tmp_path / "missing"
    with pytest.raises(KosiError, match=r"mkosi.conf:3: Setting=: .*missing does not exist"):
        parse(PathValue(), "missing", origin)


def test_trees(tmp_path):
    (tmp_path / "src").mkdir()
    origin = Origin(file="f", line=1, directory=tmp_path)
    assert parse(TreeValue(), "src", origin) == Tree(tmp_path / "src", None)
    assert parse(TreeValue(), "src:/usr/share", origin) == Tree(tmp_path / "src", "/usr/share")
    assert parse(TreeValue(), "src:/usr//share/", origin) == Tree(tmp_path / "src", "/usr/share")
    with pytest.raises(KosiError, match="absolute target"):  # as mkosi 27.1 for ExtraTrees= and the like
        parse(TreeValue(), "src:usr//share/", origin)
    runtime = TreeValue(relative_targets=True)  # RuntimeTrees=, BuildSources=: kept, mounted below their base
    assert parse(runtime, "src:data", origin) == Tree(tmp_path / "src", "data")
    assert parse(runtime, "src:data", origin).target_under("/root/src") == "/root/src/data"


def test_special_words_and_key_uris(tmp_path):
    origin = Origin(file="f", line=1, directory=tmp_path)
    assert parse(PathOrWords("default", "none"), "default", origin) == "default"
    assert parse(KeyPath(), "pkcs11:token=foo;object=bar", origin) == "pkcs11:token=foo;object=bar"
    (tmp_path / "mkosi.key").write_text("k")
    assert parse(KeyPath(), "mkosi.key", origin) == tmp_path / "mkosi.key"
    assert parse(KeySourceType(), "engine:pkcs11", origin) == KeySource("engine", "pkcs11")
    assert parse(KeySourceType(), "file", origin) == KeySource()
    assert parse(DelayedPath(), "&b/vmlinuz", origin) == "&b/vmlinuz"


def test_list_splitting():
    assert parse(ListOf(String()), "a,b c\nd,, e") == ["a", "b", "c", "d", "e"]
    assert parse(ListOf(String(), r"\s+"), "quiet console=ttyS0,115200") == ["quiet", "console=ttyS0,115200"]
    assert parse(ListOf(String(), shell=True), "-device 'nvme,serial=a b'") == ["-device", "nvme,serial=a b"]
    assert parse(ListOf(String()), "") == []


def test_environment_assignments_and_passthrough(monkeypatch):
    monkeypatch.setenv("KOSI_TEST_PASSED", "from host")
    monkeypatch.delenv("KOSI_TEST_ABSENT", raising=False)
    value = parse(Assignments(), 'A=1 B="two words" KOSI_TEST_PASSED KOSI_TEST_ABSENT')
    assert value == [{"A": "1", "B": "two words", "KOSI_TEST_PASSED": "from host", "KOSI_TEST_ABSENT": ""}]


def test_drives():
    assert parse(DriveValue(), "btrfs:10G") == Drive("btrfs", 10 * 1024**3, None, None, "btrfs", ())
    drive = parse(DriveValue(), "myfs:1G:/srv/d:cache.direct=on:shared:persist")
    assert drive == Drive("myfs", 1024**3, Path("/srv/d"), "cache.direct=on", "shared", ("persist",))
    assert DriveValue().to_json(drive) == {
        "Id": "myfs",
        "Size": 1024**3,
        "Directory": "/srv/d",
        "Options": "cache.direct=on",
        "FileId": "shared",
        "Flags": ["persist"],
    }
    skipped = parse(DriveValue(), "myfs:1G::::persist")
    assert skipped.directory is None and skipped.file_id == "myfs" and skipped.flags == ("persist",)


def test_credentials_from_pairs_files_directories_and_scripts(tmp_path):
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "one").write_text("1")
    script = tmp_path / "creds" / "two"
    script.write_text("#!/bin/sh\necho generated\n")
    script.chmod(0o755)
    (tmp_path / "single").write_text("solo")
    origin = Origin(file="f", line=2, directory=tmp_path)
    value = parse(CredentialsValue(), "a=b c=d=e creds single", origin)
    assert value == [("a", "b"), ("c", "d=e"), ("one", "1"), ("two", "generated\n"), ("single", "solo")]
    with pytest.raises(KosiError, match="NAME=VALUE or an existing file or directory"):
        parse(CredentialsValue(), "nothing-here", origin)


ROUND_TRIPS = [
    (Boolean(), "no"),
    (FeatureType(), "auto"),
    (FeatureType(), "yes"),
    (Choice("none", "zstd", booleans=("zstd", "none")), "yes"),
    (Integer(), "-5"),
    (IntegerOrWords("hash", "auto", minimum=3), "hash"),
    (IntegerOrWords("hash", "auto", minimum=3), "99"),
    (Size(), "3G"),
    (Mode(), "0640"),
    (UUIDOrRandom(), str(uuid.UUID(int=7))),
    (String(), "text"),
    (Version(), "2.0"),
    (PathValue(required=False), "/abs/path"),
    (PathOrWords("default", required=False), "default"),
    (KeyPath(required=False), "pkcs11:x"),
    (KeyPath(required=False), "/etc/key.pem"),
    (KeySourceType(), "provider:tpm2"),
    (TreeValue(required=False), "/src:/dst"),
    (ListOf(TreeValue(required=False)), "/a /b:/c"),
    (ListOf(Choice("json", "changelog")), "json changelog"),
    (ListOf(DriveValue(), r"\s+"), "a:1G b:2M:/d:opt:f:persist"),
    (Assignments(), "A=1 B=2"),
    (CredentialsValue(), "k=v x=y"),
    (DelayedPath(required=False), "&b/linux"),
]


@pytest.mark.parametrize("value_type, text", ROUND_TRIPS, ids=[f"{type(t).__name__}-{x}" for t, x in ROUND_TRIPS])
def test_json_round_trip(value_type, text):
    value = parse(value_type, text)
    document = json.loads(json.dumps(value_type.to_json(value)))
    assert value_type.from_json(document) == value
    assert value_type.to_json(value_type.from_json(document)) == document


def test_json_spellings():
    assert FeatureType().to_json(Feature.enabled) == "enabled"
    assert TreeValue(required=False).to_json(Tree(Path("/abs"), None)) == {"Source": "/abs", "Target": None}
    assert Size().to_json(parse(Size(), "1K")) == 4096  # rounded up to 4096, as mkosi
    assert KeySourceType().to_json(KeySource()) == {"Type": "file", "Source": ""}
    assert Assignments().to_json([{"A": "1"}, {"A": "2", "B": "3"}]) == {"A": "2", "B": "3"}


@pytest.mark.parametrize(
    "value_type, document",
    [(Choice("a", "b"), "c"), (FeatureType(), "maybe"), (Integer(), "3"), (Assignments(), ["A=1"]),
     (KeySourceType(), {"Type": "tpm"})],
)  # fmt: skip
def test_bad_json_is_refused(value_type, document):
    with pytest.raises((ValueError, KeyError, TypeError)):
        value_type.from_json(document)


def test_executable_credential_failure_is_reported(tmp_path):
    script = tmp_path / "broken"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    with pytest.raises(KosiError, match="exited with status 3"):
        parse(CredentialsValue(), "broken", Origin(file="f", line=1, directory=tmp_path))
    assert os.access(script, os.X_OK)


def test_a_misspelt_choice_suggests_the_closest_word():
    from kosi.config.settings import SETTINGS_BY_NAME

    with pytest.raises(KosiError) as error:
        SETTINGS_BY_NAME["Format"].type.parse("Format", "dsk", Origin(file="mkosi.conf", line=2))
    assert str(error.value).startswith(
        "mkosi.conf:2: Format=: invalid value 'dsk', expected one of addon, confext, cpio, directory"
    )
    assert str(error.value).endswith("(did you mean disk?)")


#: the text form loses what a person would not write back: credentials show their names only
TEXT_ROUND_TRIPS = [(t, x) for t, x in ROUND_TRIPS if not isinstance(t, CredentialsValue)] + [
    (ListOf(String(), r"\s+"), "console=ttyS0 quiet"),
    (ListOf(String(), shell=True), "-device 'virtio-rng-pci,id=a b'"),
    (Boolean(), "no"),
    (FeatureType(), "auto"),
]


@pytest.mark.parametrize(
    "value_type, text", TEXT_ROUND_TRIPS, ids=[f"{type(t).__name__}-{x}" for t, x in TEXT_ROUND_TRIPS]
)
def test_text_form_parses_back_to_the_value(value_type, text):
    value = parse(value_type, text)
    assert parse(value_type, value_type.text(value)) == value


@pytest.mark.parametrize(
    "value_type, text, shown",
    [
        (Boolean(), "yes", "yes"),
        (FeatureType(), "off", "disabled"),
        (Size(), "1.5G", "1536M"),
        (Size(), "5000", "8K"),
        (Mode(), "640", "0640"),
        (TreeValue(required=False), "/src:/dst", "/src:/dst"),
        (TreeValue(required=False), "/src", "/src"),
        (ListOf(TreeValue(required=False)), "/a /b:/c", "/a, /b:/c"),
        (ListOf(String(), r"\s+"), "a=1  b", "a=1 b"),
        (KeySourceType(), "file", "file"),
        (KeySourceType(), "engine:pkcs11", "engine:pkcs11"),
        (ListOf(DriveValue(), r"\s+"), "a:1G b:2M::::persist", "a:1G b:2M::::persist"),
        (DriveValue(), "a:1G:/d:opt:a", "a:1G:/d:opt"),
        (Assignments(), "A=1 B=2 A=3", "A=3 B=2"),
        (CredentialsValue(), "k=secret x=y", "k, x"),
    ],
)
def test_text_form(value_type, text, shown):
    assert value_type.text(parse(value_type, text)) == shown
