"""The operator's policy: ceilings per trust level, every excess named, dev refused
in production."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import airssys.security as security
from airssys.errors import ManifestError, PolicyViolation
from airssys.security import (
    Ceiling,
    FileGrant,
    FileRoot,
    Grants,
    HostPattern,
    Policy,
    ProcessGrant,
    TrustLevel,
)

MiB = 1024 * 1024

GREEDY = Grants(
    send=("/app/*",),
    publish=("orders.#",),
    buckets=("cache",),
    quota=20 * MiB,
    keys=50_000,
    files=(FileGrant(Path("/srv/comp/data"), "/data"),),
    network=(HostPattern.parse("https://api.example.com"),),
    process=(ProcessGrant("/usr/bin/convert", ("**",)),),
)


def test_the_default_policy_admits_messaging_and_small_storage_for_unknown_code() -> None:
    policy = Policy.default()
    modest = Grants(send=("/#",), publish=("#",), subscribe=("#",), buckets=("*",), quota=MiB)
    assert policy.admit(modest, "unknown") == []
    assert policy.admit(Grants(buckets=("a",), quota=10 * MiB, keys=10_000), "unknown") == []
    assert policy == Policy()


def test_a_component_over_its_ceiling_is_refused_with_every_excess_named() -> None:
    excesses = Policy.default().admit(GREEDY, TrustLevel.UNKNOWN)
    assert len(excesses) == 5, excesses
    text = "\n".join(excesses)
    for fragment in (
        "storage quota 20971520 bytes: above the unknown ceiling's 10485760 bytes",
        "storage keys 50000: above the unknown ceiling's 10000 keys",
        "files /data: /srv/comp/data is under no root of the unknown ceiling (nothing)",
        "network https://api.example.com: not within the unknown ceiling (nothing)",
        "process /usr/bin/convert: not a command the unknown ceiling allows (nothing)",
    ):
        assert fragment in text
    with pytest.raises(PolicyViolation) as caught:
        Policy.default().check(GREEDY, "unknown", component="thumbs")
    error = caught.value
    assert isinstance(error, PermissionError)
    assert error.component == "thumbs"
    assert error.excesses == tuple(excesses)
    assert str(error).startswith("component 'thumbs' (trust unknown) is refused: 5 excesses")
    for line in excesses:
        assert f"\n  - {line}" in str(error)


def test_trusted_code_is_admitted_by_default() -> None:
    assert Policy.default().admit(GREEDY, "trusted") == []
    Policy.default().check(GREEDY, TrustLevel.TRUSTED, component="thumbs")


def test_dev_allows_everything_unless_the_policy_is_for_production() -> None:
    assert Policy().admit(GREEDY, "dev") == []
    production = Policy(production=True)
    assert production.admit(GREEDY, "dev") == [
        "trust dev: this policy is for production and refuses dev trust"
    ]
    with pytest.raises(PolicyViolation, match="refuses dev trust"):
        production.check(Grants.none(), "dev", component="x")
    with pytest.raises(PolicyViolation):
        production.compile(Grants.none(), "dev", component="x")


def test_dev_is_granted_everything_even_undeclared() -> None:
    policy = Policy(shared_buckets=frozenset({"config"}))
    checks = policy.compile(Grants.none(), "dev", component="x")
    checks.check_url("https://anything.example")
    checks.check_bucket("config")
    checks.check_process("/bin/sh", ["-c", "true"])
    assert policy.effective(GREEDY, "trusted") is GREEDY


def test_an_unknown_trust_level_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="accepted: trusted, unknown, dev"):
        Policy().admit(Grants.none(), "root")
    with pytest.raises(ValueError, match="accepted"):
        TrustLevel.parse(3)
    assert TrustLevel.parse("dev") is TrustLevel.DEV


def test_compile_checks_then_builds_the_checks() -> None:
    seen: list[tuple[str, str, str]] = []
    grants = Grants(send=("/app/*",))
    checks = Policy().compile(grants, "unknown", component="c", on_deny=lambda *a: seen.append(a))
    checks.check_send("/app/x")
    with pytest.raises(PermissionError):
        checks.check_send("/other")
    assert seen and seen[0][0] == "send"
    with pytest.raises(PolicyViolation):
        Policy().compile(GREEDY, "unknown", component="c")


# --- ceilings kind by kind ---------------------------------------------------------------


def test_messaging_ceilings_use_pattern_covering() -> None:
    ceiling = Ceiling(send=("/app/#",), publish=("app.*",), subscribe=("app.#",))
    ok = Grants(send=("/app/*", "/app"), publish=("app.x",), subscribe=("app.*.y",))
    assert ceiling.excesses(ok) == []
    bad = Grants(send=("/#",), publish=("app.#",), subscribe=("other",))
    assert [str(e) for e in ceiling.excesses(bad, level="unknown")] == [
        "send /#: not within the unknown ceiling (/app/#)",
        "publish app.#: not within the unknown ceiling (app.*)",
        "subscribe other: not within the unknown ceiling (app.#)",
    ]


def test_storage_ceilings() -> None:
    ceiling = Ceiling(buckets=("cache-*", "main"), shared=("config",), max_quota=MiB)
    assert ceiling.excesses(Grants(buckets=("cache-1", "main"), quota=MiB)) == []
    excesses = ceiling.excesses(
        Grants(buckets=("*", "other", "config", "secrets"), quota=MiB + 1),
        shared_buckets={"config", "secrets"},
    )
    assert [e.resource for e in excesses] == [
        "bucket *",
        "bucket other",
        "bucket secrets",
        "quota 1048577 bytes",
    ]


def test_a_shared_bucket_needs_the_ceiling_to_open_it() -> None:
    policy = Policy(shared_buckets=frozenset({"config"}))
    assert policy.admit(Grants(buckets=("config",)), "unknown") == [
        "storage bucket config: a shared bucket the unknown ceiling does not open (nothing)"
    ]
    assert policy.admit(Grants(buckets=("config",)), "trusted") == []


def test_file_ceilings_are_roots_with_a_writable_flag() -> None:
    ceiling = Ceiling(
        files=(FileRoot(Path("/srv"), writable=False), FileRoot(Path("/tmp/rw"), True))
    )
    ok = Grants(
        files=(
            FileGrant(Path("/srv/comp/data"), "/data"),
            FileGrant(Path("/tmp/rw/x"), "/x", writable=True),
        )
    )
    assert ceiling.excesses(ok) == []
    bad = Grants(
        files=(
            FileGrant(Path("/srv/comp/data"), "/data", writable=True),
            FileGrant(Path("/srvx/data"), "/other"),
            FileGrant(Path("/srv/../etc"), "/etc"),
        )
    )
    reasons = [str(e) for e in ceiling.excesses(bad)]
    assert reasons[0] == "files /data: writable, but the ceiling allows it read-only"
    assert reasons[1].startswith("files /other: /srvx/data is under no root")
    assert reasons[2].startswith("files /etc: /srv/../etc is under no root")
    assert ceiling.allows_host_path("/srv/a/b") and not ceiling.allows_host_path("relative")


def test_network_and_process_ceilings() -> None:
    ceiling = Ceiling(
        network=(HostPattern.parse("https://*.example.com"),), process=("/usr/bin/convert",)
    )
    ok = Grants(
        network=(HostPattern.parse("https://api.example.com"),),
        process=(ProcessGrant("/usr/bin/convert", ("**",)),),
    )
    assert ceiling.excesses(ok) == []
    bad = Grants(
        network=(HostPattern.parse("https://example.com"), HostPattern.parse("*://*:*")),
        process=(ProcessGrant("/bin/sh"), ProcessGrant("*")),
    )
    assert [e.resource for e in ceiling.excesses(bad)] == [
        "https://example.com",
        "*://*:*",
        "/bin/sh",
        "*",
    ]


def test_storage_limits_are_the_declared_ones_else_the_ceilings() -> None:
    policy = Policy()
    assert policy.storage_limits(Grants(buckets=("a",)), "unknown") == (10 * MiB, 10_000)
    assert policy.storage_limits(Grants(buckets=("a",), quota=5), "unknown") == (5, 10_000)
    assert policy.storage_limits(Grants(buckets=("a",)), "trusted") == (None, None)


# --- policy files ---------------------------------------------------------------------------

POLICY = """
production = true
shared-buckets = ["config"]

[unknown]
messaging = { send = ["/app/#"], publish = ["app.#"], subscribe = ["app.#"] }
storage = { buckets = ["*"], quota = "1MiB", keys = 1000 }
network = ["https://*.example.com"]

[trusted]
storage = { buckets = ["*"], shared = ["config"] }
files = [{ host = "/srv/data", writable = true }]
network = ["*://*:*"]
process = ["/usr/bin/convert", { command = "/usr/bin/identify" }]
"""


def test_a_policy_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    policy = Policy.load(path)
    assert policy.production
    assert policy.shared_buckets == frozenset({"config"})
    assert policy.unknown.send == ("/app/#",)
    assert (policy.unknown.max_quota, policy.unknown.max_keys) == (MiB, 1000)
    assert policy.unknown.files == () and policy.unknown.process == ()  # the defaults' kept
    assert policy.unknown.network == (HostPattern.parse("https://*.example.com"),)
    assert policy.trusted.files == (FileRoot(Path("/srv/data"), writable=True),)
    assert policy.trusted.process == ("/usr/bin/convert", "/usr/bin/identify")
    assert policy.trusted.send == ("/#",)  # kinds left out keep the default ceiling
    assert policy.trusted.max_quota is None


def test_the_module_docstring_policy_example_loads() -> None:
    doc = security._policy.__doc__ or ""
    example = doc.split("A policy file::", 1)[1].split("\n\nA ceiling", 1)[0]
    policy = Policy.from_toml(textwrap.dedent(example))
    assert policy.production and policy.trusted.process == ("/usr/bin/convert",)


def test_an_empty_policy_file_is_the_default() -> None:
    assert Policy.from_toml("") == Policy.default()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("production = 1", r"^p\.toml: production: expected true or false"),
        ("strict = true", r"^p\.toml: strict: unknown key; accepted: production, shared-buckets"),
        ("[dev]\nnetwork = []", r"^p\.toml: dev: dev trust allows everything"),
        ('shared-buckets = ["*"]', r"^p\.toml: shared-buckets: name the shared buckets"),
        ('shared-buckets = ["A"]', r"^p\.toml: shared-buckets\[0\]: .*bucket name"),
        ("[unknown]\ncpu = 1", r"^p\.toml: unknown\.cpu: unknown key"),
        ('[unknown]\nnetwork = ["*"]', r"^p\.toml: unknown\.network\[0\]: .*\*://\*:\*"),
        ('[trusted]\nfiles = [{ host = "data" }]', r"trusted\.files\[0\]\.host: .*absolute"),
        (
            '[trusted]\nfiles = [{ host = "/d", guest = "/d" }]',
            r"trusted\.files\[0\]\.guest: a ceiling names host roots only",
        ),
        ('[trusted]\nprocess = ["convert"]', r"trusted\.process\[0\]: .*not absolute"),
        ("[unknown]\nstorage = { quota = 1 }", r"unknown\.storage: names no buckets"),
        ('[unknown]\nstorage = { buckets = ["*"], quota = "x" }', r"unknown\.storage\.quota"),
        ("[unknown\n", r"^p\.toml: not valid TOML"),
    ],
)
def test_bad_policy_files_name_the_file_and_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        Policy.from_toml(text, path="p.toml")


def test_a_missing_policy_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read the policy"):
        Policy.load(tmp_path / "absent.toml")


def test_shared_bucket_names_are_checked_from_python_too() -> None:
    with pytest.raises(ValueError, match="bucket name"):
        Policy(shared_buckets=frozenset({"Bad Name"}))


def test_a_policy_file_bounds_components() -> None:
    policy = Policy.from_toml(POLICY)
    assert policy.admit(Grants(send=("/app/x",)), "unknown") == []
    assert policy.admit(Grants(send=("/sys/x",)), "unknown") == [
        "send /sys/x: not within the unknown ceiling (/app/#)"
    ]
    assert policy.admit(Grants(buckets=("config",)), "trusted") == []
    assert policy.admit(Grants(buckets=("config",)), "unknown") != []
    with pytest.raises(PolicyViolation):
        policy.check(Grants.none(), "dev")
