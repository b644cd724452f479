"""summary, --json summary and the config <-> JSON contract, checked against the whole table."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from verbs_helpers import kosi, write

from kosi.config.jsonio import config_from_json, config_to_json, update_from_json
from kosi.config.model import Config
from kosi.config.settings import SETTINGS
from kosi.config.values import DefaultInitrd, Origin
from kosi.errors import KosiError


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    write(
        tmp_path / "mkosi.conf",
        "[Distribution]\nDistribution=debian\nRelease=bookworm\n\n[Content]\nPackages=vim,less\nWithDocs=no\n",
    )
    write(tmp_path / "mkosi.conf.d/10-more.conf", "[Content]\nPackages=curl\n")
    write(tmp_path / "mkosi.images/initrd/mkosi.conf", "[Output]\nFormat=cpio\n")
    return tmp_path


def test_json_summary_is_one_document_with_every_setting(project_dir: Path):
    result = kosi("--json", "summary", cwd=project_dir)
    document = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert list(document) == ["Images", "Tools"]
    assert document["Tools"] is None
    names = sorted({"Image", "Files"} | {s.name for s in SETTINGS if s.json})
    assert [list(image) for image in document["Images"]] == [names, names]
    initrd, main = document["Images"]
    assert initrd["Format"] == "cpio"
    assert main["Distribution"] == "debian" and main["Release"] == "bookworm"
    assert main["Packages"] == ["curl", "less", "vim"]  # sorted, as mkosi 27.1 prints them
    assert main["WithDocs"] is False


def test_text_summary_groups_by_section_in_table_order(project_dir: Path):
    out = kosi("summary", cwd=project_dir).stdout
    sections = list(dict.fromkeys(s.section for s in SETTINGS))
    blocks = out.split("\n\n")
    assert blocks[0].startswith("Image 'initrd':") and blocks[-1].startswith("Main image:")
    main = blocks[-1]
    positions = [main.index(f"  [{section}]\n") for section in sections]
    assert positions == sorted(positions)
    for setting in SETTINGS:
        assert f"\n    {setting.name}: " in main
    assert "    Distribution: debian\n" in main
    assert "    Packages: curl, less, vim\n" in main


def test_summary_shows_tools_tree_when_configured(project_dir: Path):
    document = json.loads(
        kosi("--json", "summary", "--tools-tree", "default", cwd=project_dir, check=False).stdout or "null"
    )
    if document is None:
        pytest.skip("ToolsTree= does not take 'default' in this table yet")
    assert document["Tools"] is not None and document["Tools"]["Format"] == "directory"
    out = kosi("summary", "--tools-tree", "default", cwd=project_dir).stdout
    assert out.startswith("Tools tree:")


SAMPLE_WORDS = ("yes", "auto", "1", "4096", "0755", "word", "A=1", "drive0:1G", "file", "1.2")


def sample_value(setting, directory: Path):
    """A value for any setting, made by its own parser, so every type of the table is covered."""
    from kosi.config.values import Assignments, Choice, ImagePath, PathValue, Size, TreeValue, UUIDOrRandom

    kind = getattr(setting.type, "item", setting.type)
    origin = Origin(file="sample.conf", line=1, directory=directory)
    (directory / "tree").mkdir(exist_ok=True)
    if isinstance(kind, TreeValue):
        text = "tree:/srv/target"
    elif isinstance(kind, PathValue):
        text = "tree"
    elif isinstance(kind, Choice):
        text = kind.choices[-1]
    elif isinstance(kind, Assignments):
        text = "A=1 B=two"
    elif isinstance(kind, Size):
        text = "4K"
    elif isinstance(kind, ImagePath):
        text = "/splash.bmp"
    elif isinstance(kind, UUIDOrRandom):
        text = str(uuid.uuid4())
    else:
        text = None
    candidates = ([text] if text else []) + list(kind.choices) + list(SAMPLE_WORDS) + ["tree", str(uuid.uuid4())]
    for word in candidates:
        try:
            return setting.type.parse(setting.name, word, origin)
        except KosiError:
            continue
    raise AssertionError(f"no sample value parses for {setting.name} ({type(setting.type).__name__})")


def test_round_trip_with_every_setting_set(tmp_path: Path):
    config = Config({s.name: sample_value(s, tmp_path) for s in SETTINGS}, directory=tmp_path)
    document = json.loads(json.dumps(config_to_json(config)))
    back = config_from_json(document, directory=tmp_path)
    again = config_to_json(back)
    for setting in (s for s in SETTINGS if s.json):
        assert document[setting.name] not in (None, [], {}), f"{setting.name}: the sample value got lost"
        assert again[setting.name] == document[setting.name], setting.name
    assert list(again) == list(document)


def test_json_spelling_of_values(tmp_path: Path):
    by_type = {}
    for setting in SETTINGS:
        by_type.setdefault(type(getattr(setting.type, "item", setting.type)).__name__, setting)
    config = Config({s.name: sample_value(s, tmp_path) for s in by_type.values()}, directory=tmp_path)
    document = config_to_json(config)
    if "TreeValue" in by_type:
        tree = document[by_type["TreeValue"].name]
        tree = tree[0] if isinstance(tree, list) else tree
        assert tree == {"Source": str(tmp_path / "tree"), "Target": "/srv/target"}
    if "FeatureType" in by_type:
        assert document[by_type["FeatureType"].name] in ("enabled", "disabled", "auto")
    if "Size" in by_type:
        value = document[by_type["Size"].name]
        assert value == 4096 or value == [4096]


def test_unknown_key_from_a_configure_script_is_named():
    with pytest.raises(KosiError) as error:
        config_from_json({"Distribution": "debian", "Pakages": ["vim"]}, source="mkosi.configure")
    text = str(error.value)
    assert "Pakages" in text and "mkosi.configure" in text and "Packages" in text


def test_update_from_json_replaces_and_resets(tmp_path: Path):
    config = Config({"Distribution": "debian", "Release": "bookworm"}, directory=tmp_path)
    updated = update_from_json(config, {"Release": None, "Distribution": "ubuntu"})
    assert updated["Distribution"] == "ubuntu"
    assert not updated.is_set("Release")
    assert config["Release"] == "bookworm"  # the original is left alone


def test_update_from_json_keeps_initrds_default(tmp_path: Path):
    """A configure script echoing Initrds= back unchanged keeps `default` the default initrd."""
    initrds = [DefaultInitrd(tmp_path / "initrd"), tmp_path / "extra.cpio"]
    config = Config({"Initrds": initrds}, directory=tmp_path)
    document = config_to_json(config)
    assert document["Initrds"] == [str(tmp_path / "initrd"), str(tmp_path / "extra.cpio")]
    kept = update_from_json(config, document)["Initrds"]
    assert isinstance(kept[0], DefaultInitrd) and not isinstance(kept[1], DefaultInitrd)
    changed = update_from_json(config, {"Initrds": [str(tmp_path / "extra.cpio")]})["Initrds"]
    assert changed == [tmp_path / "extra.cpio"]


def test_cat_config_shows_every_file_with_a_header(project_dir: Path):
    out = kosi("cat-config", cwd=project_dir).stdout
    for path in ("mkosi.conf", "mkosi.conf.d/10-more.conf", "mkosi.images/initrd/mkosi.conf"):
        header = f"# {project_dir / path}\n"
        assert header in out
        body = out.split(header, 1)[1]
        assert body.startswith((project_dir / path).read_text())


def test_text_summary_hides_secrets_that_json_keeps(tmp_path: Path):
    write(tmp_path / "mkosi.conf", "[Distribution]\nDistribution=debian\n")
    secret = write(tmp_path / "mkosi.rootpw", "hunter2\n")
    secret.chmod(0o600)
    text = kosi("summary", cwd=tmp_path).stdout
    assert "hunter2" not in text and "    RootPassword: (set, not shown)\n" in text
    document = json.loads(kosi("--json", "summary", cwd=tmp_path).stdout)
    assert "hunter2" in json.dumps(document["Images"][-1]["RootPassword"])
