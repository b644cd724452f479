from pathlib import Path

from config_helpers import main_config

from kosi.config.model import Config
from kosi.config.specifiers import Location, expand_delayed, expand_specifiers, host_architecture

WHERE = Location(Path("/c"), Path("/p"), Path("/d"), "sub")


def test_setting_and_location_specifiers():
    config = Config(
        {"Distribution": "debian", "Release": "trixie", "Format": "tar", "ImageId": "x", "ImageVersion": "3"}
    )
    text = "%d-%r-%t-%i-%v-%C-%P-%D-%I-%F-%%-%a"
    assert expand_specifiers(text, config, WHERE) == f"debian-trixie-tar-x-3-/c-/p-/d-sub-ext4-%-{host_architecture()}"


def test_filesystem_specifier_follows_distribution():
    assert expand_specifiers("%F", Config({"Distribution": "fedora"}), WHERE) == "btrfs"


def test_unknown_specifier_is_dropped_with_a_warning_as_in_mkosi(capsys):
    assert expand_specifiers("a%Xb%", Config({}), WHERE, file="f.conf", line=3) == "ab%"
    assert "f.conf:3: unknown specifier %X" in capsys.readouterr().err
    # the specifiers after an unknown one still expand (the warning once replaced the location)
    assert expand_specifiers("%X%D/%I", Config({}), WHERE, file="f.conf", line=3) == "/d/sub"


def test_delayed_specifiers():
    config = Config({"Distribution": "debian", "Release": "trixie", "Architecture": "arm64", "ImageId": "i",
                     "ImageVersion": "2"}, image="sub")  # fmt: skip
    assert expand_delayed("&d~&r~&a~&i~&v~&I~&&~&e~&k", config) == "debian~trixie~arm64~i~2~sub~&~&e~&k"


def test_directory_specifiers_follow_the_manual_table(project):
    root = project({
        "mkosi.conf": "[Content]\nPackages=top-%C-%P-%D\n",
        "mkosi.conf.d/abc.conf": "[Content]\nPackages=file-%C-%P-%D\n",
        "mkosi.conf.d/sub/mkosi.conf": "[Content]\nPackages=dir-%C-%P-%D\n",
    })  # fmt: skip
    d = str(root)
    assert (main_config(root).packages or []) == sorted([
        f"top-{d}-{d}-{d}", f"file-{d}/mkosi.conf.d-{d}-{d}", f"dir-{d}/mkosi.conf.d/sub-{d}/mkosi.conf.d/sub-{d}",
    ])  # fmt: skip


def test_specifiers_use_values_set_so_far(project):
    root = project({"mkosi.conf": "[Output]\nImageId=early\nOutput=%i-%t\nFormat=tar\n"})
    assert main_config(root).output == "early-disk"


def test_cache_key_keeps_its_delayed_specifiers_until_used(project):
    # mkosi 27.1 prints CacheKey=&d~&r~&a~&I as it is; the build expands it with the final values
    root = project({"mkosi.conf": "[Distribution]\nDistribution=debian\nRelease=trixie\nArchitecture=x86-64\n"})
    config = main_config(root)
    assert config.cache_key == "&d~&r~&a~&I"
    assert expand_delayed(config.cache_key, config) == "debian~trixie~x86-64~main"
