import pytest

from kosi.config.cli_args import CLI_ONLY_OPTIONS, parse_command_line
from kosi.errors import KosiError


def assigned(args):
    return [(s.name, text) for s, text in args.assignments]


def test_defaults():
    args = parse_command_line([])
    assert (args.verb, args.force, args.directory, args.assignments, args.cmdline) == ("build", 0, None, [], [])


def test_options_before_and_after_the_verb():
    args = parse_command_line(["-d", "debian", "-t", "disk", "vm", "-f", "--format=tar"])
    assert args.verb == "vm" and args.force == 1
    assert assigned(args) == [("Distribution", "debian"), ("Format", "disk"), ("Format", "tar")]


def test_verb_arguments_and_double_dash():
    args = parse_command_line(["burn", "/dev/sdX", "--", "-a", "--b"])
    assert (args.verb, args.verb_args, args.cmdline) == ("burn", ["/dev/sdX"], ["-a", "--b"])
    assert parse_command_line(["completion", "bash"]).verb_args == ["bash"]


def test_cli_only_options():
    args = parse_command_line(["-ff", "-C", "dir", "--debug", "--debug-shell", "--debug-workspace", "--debug-sandbox",
                               "--json", "-w", "-R", "-B", "--genkey-common-name=me", "--genkey-valid-days", "5",
                               "--doc-format=man", "summary"])  # fmt: skip
    assert args.force == 2 and args.directory == "dir" and args.debug and args.debug_shell and args.debug_workspace
    assert args.debug_sandbox and args.json and args.wipe_build_dir and args.rerun_build_scripts and args.auto_bump
    assert (args.genkey_common_name, args.genkey_valid_days, args.doc_format, args.verb) == (
        "me",
        "5",
        "man",
        "summary",
    )
    assert parse_command_line(["-C", ""]).directory == ""
    assert "--debug-timing" in [o.long for o in CLI_ONLY_OPTIONS]
    assert parse_command_line(["--no-pager", "--debug-timing", "summary"]).no_pager


def test_option_values_as_mkosi_27_1():
    # A long boolean option needs a value, even a verb (mkosi 27.1 refuses WithDocs=build)...
    assert assigned(parse_command_line(["--with-docs", "build"])) == [("WithDocs", "build")]
    assert assigned(parse_command_line(["--with-docs", "no", "build"])) == [("WithDocs", "no")]
    assert assigned(parse_command_line(["--bootable", "auto"])) == [("Bootable", "auto")]
    assert assigned(parse_command_line(["--with-docs="])) == [("WithDocs", "")]
    # ...but not an option; a negative number is a value
    with pytest.raises(KosiError, match="--with-docs needs a value") as e:
        parse_command_line(["--with-docs", "--json", "summary"])
    assert e.value.status == 2
    assert assigned(parse_command_line(["--kernel-command-line", "-1"])) == [("KernelCommandLine", "-1")]
    # only --checksum may go without one; short switches take none
    assert assigned(parse_command_line(["--checksum", "--json", "summary"])) == [("Checksum", "yes")]
    assert assigned(parse_command_line(["--checksum", "no", "summary"])) == [("Checksum", "no")]
    assert assigned(parse_command_line(["-ai", "summary"])) == [("Autologin", "yes"), ("Incremental", "yes")]
    with pytest.raises(KosiError, match="does not take a value"):
        parse_command_line(["-i=yes"])


@pytest.mark.parametrize(
    "argv", [["-d", "nosuch"], ["--ssh", "yes"], ["--incremental=true"], ["--verity="], ["--initrd-profile="]]
)
def test_options_with_choices_refuse_other_words_as_usage_errors(argv):
    """mkosi 27.1's argparse refuses a word outside such an option's choices (boolean spellings
    too, though Ssh=yes is fine in a file) with exit status 2."""
    with pytest.raises(KosiError, match="expected one of") as e:
        parse_command_line(argv)
    assert e.value.status == 2


def test_short_options_glued():
    assert assigned(parse_command_line(["-pvim", "-p", "git"])) == [("Packages", "vim"), ("Packages", "git")]


@pytest.mark.parametrize(
    "argv,message",
    [(["--formt=tar"], "did you mean --format"), (["buld"], "did you mean build"), (["-t"], "needs a value"),
     (["-X"], "unknown option -X"), (["--json=yes"], "does not take a value"),
     (["--auto-bump=no"], "does not take a value"), (["-f=3"], "-f does not take a value"),
     (["--force=3"], "does not take a value"), (["summary", "x"], "takes no arguments")],
)  # fmt: skip
def test_errors(argv, message):
    with pytest.raises(KosiError) as e:
        parse_command_line(argv)
    assert message in str(e.value)
    # a malformed command line exits 2, as mkosi 27.1's argparse; a refused one 1, as mkosi
    assert e.value.status == (1 if message == "takes no arguments" else 2)


def test_every_setting_with_a_flag_is_an_option():
    from kosi.config.cli_args import OPTION_ALIASES
    from kosi.config.settings import SETTINGS

    for setting in SETTINGS:
        # a word the option takes (options with choices refuse others on the command line)
        word = setting.type.choices[0] if setting.cli_choices else "x"
        if setting.long and setting.long not in OPTION_ALIASES:
            assert assigned(parse_command_line([f"{setting.long}={word}"])) == [(setting.name, word)]
        if setting.short:
            argv = [setting.short] if setting.short in ("-a", "-i", "-T") else [f"{setting.short}={word}"]
            assert assigned(parse_command_line(argv))[0][0] == setting.name


def test_bare_short_flags_of_booleans():
    assert assigned(parse_command_line(["-T"])) == [("WithTests", "no")]
    assert assigned(parse_command_line(["-a", "build"])) == [("Autologin", "yes")]
    assert assigned(parse_command_line(["-i", "-f"])) == [("Incremental", "yes")]


def test_mkosi_option_spellings_and_regular_expression_options():
    # mkosi 27.1's names where the manual's differ, and its older options taking regular
    # expressions, kept as re: items (--kernel-modules-initrd-include is one, whatever the manual says).
    assert assigned(parse_command_line(["--package-cache-directory=x"])) == [("PackageCacheDirectory", "x")]
    assert assigned(parse_command_line(["--kernel-initrd-modules=a,b"])) == [("KernelInitrdModules", "a,b")]
    assert assigned(parse_command_line(["--kernel-modules-include=a,b"])) == [("KernelModules", "re:a re:b")]
    assert assigned(parse_command_line(["--kernel-modules-initrd-include", "x"])) == [("KernelInitrdModules", "re:x")]
    assert assigned(parse_command_line(["--firmware-include=fw"])) == [("FirmwareFiles", "re:fw")]
