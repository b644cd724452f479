"""Signed PCR predictions in UKIs (SignExpectedPcr=) and SplitArtifacts=pcrs.

With SignExpectedPcr= on (yes; or auto when SignExpectedPcrKey= and
SignExpectedPcrCertificate= are set and systemd-measure is there), ukify from the tools tree
measures every UKI it builds and embeds `.pcrpkey` (the public key) and `.pcrsig` (the PCR 11
policy signed with SignExpectedPcrKey=, sha256 bank) - per UKI profile too: ukify appends a
`.pcrsig` after each joined profile. A key from an OpenSSL engine or provider comes with its
certificate (SignExpectedPcrCertificate=, +Source=), from which `.pcrpkey` is derived. A
[UKIProfile] with SignExpectedPcr=no is left unsigned through ukify's --sign-profile=, which
ukify 258 has; with an older ukify that profile would be signed against the user's wish,
so that is refused.

SplitArtifacts=pcrs writes <Output>.pcrs: `systemd-measure calculate --json=short` over the
measured sections of the first UKI's default profile (read back from the built UKI, so
.pcrpkey, .sbat and .uname count as systemd-stub will measure them), i.e. the expected PCR 11 value of each
boot phase (sha256 bank), for signing offline.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from kosi.boot.signing import SigningKey, existing_files, require_key_settings
from kosi.config.values import Feature
from kosi.errors import KosiError
from kosi.pipeline.context import Context
from kosi.pipeline.step import ImageDependent, Step
from kosi.pipeline.tools import find_tool
from kosi.sandbox import Mount, run

MEASURE = "systemd-measure"
#: the sections systemd-stub measures into PCR 11 (systemd-measure takes each as --<name>=)
MEASURED = (
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey",
    ".profile", ".dtbauto", ".hwids",
)  # fmt: skip
PCR_SETTINGS = (
    "SignExpectedPcr",
    "SignExpectedPcrKey",
    "SignExpectedPcrKeySource",
    "SignExpectedPcrCertificate",
    "SignExpectedPcrCertificateSource",
)


def measure_can_sign(tools: Path | None) -> bool:
    """systemd-measure signs only with libtss2 (which it dlopens) next to it: the Debian tools
    tree has it through tpm2-tools; a tree or host without it would fail half-way."""
    tool = find_tool(MEASURE, tools)
    if tool is None:
        return False
    usr = (tool.tools or Path("/")) / "usr"
    return any(usr.glob("lib*/libtss2-esys.so.0*")) or any(usr.glob("lib*/*/libtss2-esys.so.0*"))


def want_signed_pcrs(config, tools: Path | None) -> bool:
    """SignExpectedPcr=: yes (refused in one line when systemd-measure cannot sign), or auto:
    when the key and certificate are set and systemd-measure can sign."""
    mode = config.sign_expected_pcr
    if mode == Feature.disabled:
        return False
    if mode == Feature.enabled:
        if not measure_can_sign(tools):
            raise KosiError(
                "SignExpectedPcr=yes needs systemd-measure with libtss2, found neither in the tools tree nor on the host",
                hint="use ToolsTree=default (its tpm2-tools brings libtss2)",
            )
        return True
    return bool(config.sign_expected_pcr_key and config.sign_expected_pcr_certificate) and measure_can_sign(tools)


def check_pcr_keys(config) -> None:
    """SignExpectedPcr=yes without its key or certificate: refused before any step (as mkosi)."""
    if config.sign_expected_pcr != Feature.enabled:
        return
    pcr_signing_key(config)


def pcr_signing_key(config) -> SigningKey:
    key, certificate = config.sign_expected_pcr_key, config.sign_expected_pcr_certificate
    require_key_settings(
        {"SignExpectedPcrKey": key, "SignExpectedPcrCertificate": certificate},
        "SignExpectedPcr= is enabled but {setting}= is not set (default: {default} in the configuration directory)",
    )
    signing = SigningKey(
        str(key), config.sign_expected_pcr_key_source, str(certificate), config.sign_expected_pcr_certificate_source
    )
    return existing_files("SignExpectedPcr", signing)


def ukify_supports(option: str, sandbox: list[str]) -> bool:
    result = run(
        ["ukify", "build", "--help"], sandbox=sandbox, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    return option in (result.stdout or b"").decode(errors="replace")


def ukify_pcr_arguments(config, sandbox: list[str], profiles: list[tuple[str, bool]]) -> list[str]:
    """What `ukify build` needs to sign the PCR predictions of the UKI and its `profiles`
    ((ID, SignExpectedPcr=) each); the key's files must be visible in `sandbox`."""
    key = pcr_signing_key(config)
    args = ["--pcr-banks=sha256", f"--pcr-private-key={key.key}"]
    if key.key_source.type == "engine":
        args.append(f"--signing-engine={key.key_source.source}")
    elif key.key_source.type == "provider":
        args.append(f"--signing-provider={key.key_source.source}")
    if key.key_source.type != "file":
        # the public key of a key ukify cannot read comes from the certificate
        args.append(f"--pcr-public-key={key.certificate}")
        if key.certificate_source.type == "provider":
            args.append(f"--certificate-provider={key.certificate_source.source}")
    unsigned = [name for name, sign in profiles if not sign]
    if unsigned:
        if not ukify_supports("--sign-profile", sandbox):
            raise KosiError(
                f"UKI profile {unsigned[0]}: SignExpectedPcr=no needs ukify's --sign-profile= (systemd 258), "
                "which the tools tree's ukify lacks; it would sign the profile anyway",
                hint="drop SignExpectedPcr=no from the profile, or SignExpectedPcr=no for the image",
            )
        args += ["--sign-profile=main", *(f"--sign-profile={name}" for name, sign in profiles if sign)]
    return args


def pcr_key_files(config) -> list[Path]:
    return pcr_signing_key(config).files()


def measured_sections(uki: Path, directory: Path) -> list[str]:
    """Write the default profile's measured sections of `uki` into `directory`; returns the
    systemd-measure options naming them."""
    from kosi.run.kernel import pe_sections

    options = []
    for name, content in pe_sections(uki).items():
        if name in MEASURED:
            path = directory / name.lstrip(".")
            path.write_bytes(content)
            options.append(f"--{name.lstrip('.')}={path}")
    return options


def calculate(context: Context, uki: Path) -> dict[str, Any]:
    """Expected PCR 11 values of `uki`'s default profile, per boot phase (sha256)."""
    tool = find_tool(MEASURE, context.tools)
    if tool is None:
        raise KosiError("SplitArtifacts=pcrs needs systemd-measure, found neither in the tools tree nor on the host")
    directory = context.workspace / "pcrs"
    directory.mkdir(parents=True, exist_ok=True)
    sandbox = tool.sandbox([Mount(directory, str(directory))])
    options = measured_sections(uki, directory)
    result = run(
        [tool.path, "calculate", "--json=short", "--bank=sha256", *options],
        sandbox=sandbox,
        stdout=subprocess.PIPE,
    )
    return json.loads(result.stdout)


class PcrDigests(Step):
    """SplitArtifacts=pcrs: the pre-calculated PCR 11 digests of the UKI, next to the image."""

    name = "pre-calculate PCR digests"

    def skip(self, context: Context) -> str | None:
        if "pcrs" not in context.config.split_artifacts:
            return "SplitArtifacts= does not ask for pcrs"
        if context.config.format == "none":
            return "Format=none"
        if not context.state.ukis:  # known only once the UKIs are built
            return ImageDependent("no unified kernel image is built")
        return None

    def inputs(self, context: Context) -> dict[str, Any]:
        return {"SplitArtifacts": context.config.split_artifacts}

    def run(self, context: Context) -> None:
        from kosi.outputs.naming import base_name

        digests = calculate(context, Path(context.state.ukis[0]))
        (context.staging / f"{base_name(context.config)}.pcrs").write_text(json.dumps(digests) + "\n")
