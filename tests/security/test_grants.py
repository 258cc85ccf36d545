"""Declared grants: the [capabilities] table, and the compiled checks for every kind."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest

import airssys.security as security
from airssys.errors import CapabilityDenied, ManifestError
from airssys.security import FileGrant, Grants, HostPattern, Kind, ProcessGrant, parse_capabilities

MANIFEST = """
[capabilities]
messaging = { send = ["/app/*"], publish = ["orders.*"], subscribe = ["orders.#"] }
storage = { buckets = ["default", "cache"], quota = "10MiB", keys = 10000 }
files = [{ host = "./data", guest = "/data", writable = false }]
network = ["https://api.example.com", "https://*.example.org:443"]
process = [{ command = "/usr/bin/convert", args = ["-resize", "*", "**"] }]
"""


def grants_of(text: str, base: str = "/srv/comp") -> Grants:
    return parse_capabilities(tomllib.loads(text)["capabilities"], "Component.toml", base_dir=base)


def denied(check: Any, *args: Any) -> CapabilityDenied:
    with pytest.raises(CapabilityDenied) as caught:
        check(*args)
    return caught.value


@pytest.fixture
def grants() -> Grants:
    return grants_of(MANIFEST)


def test_the_documented_table_parses(grants: Grants) -> None:
    assert grants.send == ("/app/*",)
    assert grants.publish == ("orders.*",)
    assert grants.subscribe == ("orders.#",)
    assert grants.buckets == ("default", "cache")
    assert (grants.quota, grants.keys) == (10 * 1024 * 1024, 10_000)
    assert grants.files == (FileGrant(Path("/srv/comp/data"), "/data", writable=False),)
    assert grants.network == (
        HostPattern.parse("https://api.example.com"),
        HostPattern.parse("https://*.example.org"),
    )
    assert grants.process == (ProcessGrant("/usr/bin/convert", ("-resize", "*", "**")),)


def test_the_module_docstring_example_is_the_schema() -> None:
    doc = security.__doc__ or ""
    example = doc.split("Component.toml::", 1)[1].split("Python callers", 1)[0]
    assert grants_of(textwrap.dedent(example)) == grants_of(MANIFEST)


def test_nothing_is_granted_unless_declared() -> None:
    empty = Grants.none()
    assert empty.is_empty and grants_of("[capabilities]") == empty
    checks = empty.compile("c")
    cases: list[tuple[Any, tuple[Any, ...]]] = [
        (checks.check_send, ("/app/x",)),
        (checks.check_publish, ("orders.eu",)),
        (checks.check_subscribe, ("orders.#",)),
        (checks.check_bucket, ("default",)),
        (checks.check_url, ("https://example.com",)),
        (checks.check_process, ("/bin/true", [])),
    ]
    for check, args in cases:
        assert "granted: nothing" in str(denied(check, *args))


def test_everything_grants_everything() -> None:
    checks = Grants.everything().compile("dev")
    checks.check_send("/any/where")
    checks.check_publish("any.topic")
    checks.check_subscribe("#")
    checks.check_bucket("anything")
    checks.check_url("redis://cache:6379")
    checks.check_process("/bin/sh", ["-c", "true"])


def test_python_callers_pass_the_same_shape(tmp_path: Path) -> None:
    table: dict[str, Any] = tomllib.loads(MANIFEST)["capabilities"]
    assert Grants.from_dict(table, base_dir="/srv/comp") == grants_of(MANIFEST)
    relative = Grants.from_dict({"files": [{"host": "data", "guest": "/d"}]}, base_dir=tmp_path)
    assert relative.files[0].host == tmp_path / "data"


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("cpu = 1", r"capabilities\.cpu: unknown key; accepted: messaging, storage, files"),
        ("messaging = { call = [] }", r"messaging\.call: unknown key; accepted: send, publish"),
        ("messaging = []", r"capabilities\.messaging: expected a table"),
        ('messaging = { send = "/app/*" }', r"messaging\.send: expected a list"),
        ('messaging = { send = ["app"] }', r"messaging\.send\[0\]: .*does not start with '/'"),
        ('messaging = { publish = ["a", "b#"] }', r"messaging\.publish\[1\]: .*'\*' and '#'"),
        ('storage = { buckets = ["Bad Name"] }', r"storage\.buckets\[0\]: .*bucket name"),
        ('storage = { buckets = ["a"], quota = "lots" }', r"storage\.quota: .*not a size"),
        ('storage = { buckets = ["a"], quota = 0 }', r"storage\.quota: .*positive"),
        ('storage = { buckets = ["a"], keys = 0 }', r"storage\.keys: expected a whole number"),
        ('storage = { buckets = ["a"], keys = true }', r"storage\.keys: expected a whole number"),
        ('storage = { quota = "1MiB" }', r"storage: names no buckets"),
        (
            'storage = { buckets = ["a"], size = 1 }',
            r"storage\.size: unknown key; accepted: buckets",
        ),
        ('files = [{ host = "./d" }]', r"files\[0\]: missing guest"),
        ('files = [{ guest = "/d" }]', r"files\[0\]: missing host"),
        ('files = [{ host = "./d", guest = "d" }]', r"files\[0\]\.guest: .*not absolute"),
        ('files = [{ host = "./d", guest = "/a/../b" }]', r"files\[0\]\.guest: .*'\.\.'"),
        ('files = [{ host = "./d", guest = "/d", writable = "yes" }]', r"writable: expected true"),
        ('files = [{ host = "./d", guest = "/d", mode = "ro" }]', r"files\[0\]\.mode: unknown"),
        (
            'files = [{ host = "./a", guest = "/d" }, { host = "./b", guest = "/d/" }]',
            r"files\[1\]\.guest: '/d' is mounted twice",
        ),
        ('network = ["*"]', r"network\[0\]: .*\*://\*:\*"),
        ('network = ["example.com"]', r"network\[0\]: .*write 'https://example.com'"),
        ('network = ["https://example.com/api"]', r"network\[0\]: .*holds a path"),
        ('process = [{ command = "convert" }]', r"process\[0\]\.command: .*not absolute"),
        ('process = [{ command = "/usr/bin/../bin/x" }]', r"process\[0\]\.command: .*normal form"),
        ("process = [{ args = [] }]", r"process\[0\]: missing command"),
        ('process = [{ command = "/bin/x", args = ["**", "a"] }]', r"args\[0\]: '\*\*'.*last"),
        ('process = [{ command = "/bin/x", args = [1] }]', r"args\[0\]: expected an argument"),
        ('process = [{ command = "/bin/x", env = {} }]', r"process\[0\]\.env: unknown key"),
    ],
)
def test_bad_declarations_name_the_file_the_key_and_the_syntax(table: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match=f"^Component.toml: .*{fragment}"):
        grants_of("[capabilities]\n" + table)


def test_the_network_error_points_at_the_entry() -> None:
    text = '[capabilities]\nnetwork = ["https://ok.example", "*"]'
    with pytest.raises(ManifestError, match=r"^Component\.toml: capabilities\.network\[1\]: "):
        grants_of(text)


# --- the checks, kind by kind ------------------------------------------------------------


def test_send_and_request(grants: Grants) -> None:
    checks = grants.compile("c")
    checks.check_send("/app/echo")
    checks.check_request("/app/echo")
    error = denied(checks.check_send, "/other/echo")
    assert str(error) == "capability denied: send /other/echo; granted: /app/*"
    assert (error.kind, error.resource, error.component) == ("send", "/other/echo", "c")
    assert isinstance(error, PermissionError)
    denied(checks.check_send, "/app/a/b")  # '*' is one segment


def test_publish(grants: Grants) -> None:
    checks = grants.compile("c")
    checks.check_publish("orders.eu")
    assert str(denied(checks.check_publish, "orders.eu.created")) == (
        "capability denied: publish orders.eu.created; granted: orders.*"
    )


def test_subscribe_patterns_must_lie_within_the_grants(grants: Grants) -> None:
    checks = grants.compile("c")
    for pattern in ("orders", "orders.eu", "orders.*", "orders.#", "orders.*.created"):
        checks.check_subscribe(pattern)
    for pattern in ("#", "*.created", "billing.#", "orders..x", ""):
        assert denied(checks.check_subscribe, pattern).kind == "subscribe"


def test_storage_buckets(grants: Grants) -> None:
    checks = grants.compile("c")
    checks.check_bucket("default")
    checks.check_bucket("cache")
    assert str(denied(checks.check_bucket, "other")) == (
        "capability denied: storage other; granted: default, cache"
    )


def test_any_own_bucket_does_not_reach_shared_buckets() -> None:
    checks = Grants(buckets=("*",)).compile("c", shared_buckets={"config"})
    checks.check_bucket("mine")
    denied(checks.check_bucket, "config")
    denied(checks.check_bucket, "Not A Name")
    Grants(buckets=("config",)).compile("c", shared_buckets={"config"}).check_bucket("config")


def test_network(grants: Grants) -> None:
    checks = grants.compile("c")
    checks.check_url("https://api.example.com/v1/items?x=1")
    checks.check_url("https://cdn.example.org/a.png")
    for url in (
        "https://example.org/",
        "http://api.example.com/",
        "https://api.example.com:8443/",
        "https://api.example.com@evil.com/",
    ):
        assert denied(checks.check_url, url).kind == "network"
    assert "granted: https://api.example.com, https://*.example.org" in str(
        denied(checks.check_url, "https://evil.com")
    )


def test_process_arguments(grants: Grants) -> None:
    checks = grants.compile("c")
    checks.check_process("/usr/bin/convert", ["-resize", "50%"])
    checks.check_process("/usr/bin/convert", ["-resize", "50%", "in.png", "out.png"])
    checks.check_process("/usr/bin/convert", ("-resize", ""))
    for command, args in [
        ("/usr/bin/convert", []),
        ("/usr/bin/convert", ["-resize"]),
        ("/usr/bin/convert", ["-crop", "50%"]),
        ("/usr/bin/identify", ["-resize", "50%"]),
        ("/usr/bin/../bin/convert", ["-resize", "50%"]),
        ("convert", ["-resize", "50%"]),
        ("/usr/bin/convert", ["-resize", "50%\x00x"]),
    ]:
        assert denied(checks.check_process, command, args).kind == "process"
    error = denied(checks.check_process, "/bin/rm", ["-rf", "/"])
    assert str(error) == (
        "capability denied: process /bin/rm -rf /; granted: /usr/bin/convert -resize * **"
    )


def test_process_argument_globs_stay_within_one_argument() -> None:
    checks = Grants(process=(ProcessGrant("/bin/echo", ("--size=*",)),)).compile("c")
    checks.check_process("/bin/echo", ["--size=10"])
    checks.check_process("/bin/echo", ["--size="])
    denied(checks.check_process, "/bin/echo", ["--size=10", "extra"])
    denied(checks.check_process, "/bin/echo", ["--other"])
    no_args = Grants(process=(ProcessGrant("/bin/true"),)).compile("c")
    no_args.check_process("/bin/true")
    denied(no_args.check_process, "/bin/true", ["x"])


def test_process_cache_keys_cannot_collide() -> None:
    """('a', ['b']) being allowed says nothing about a command named 'a<NUL>b'."""
    checks = Grants(process=(ProcessGrant("/bin/a", ("b",)),)).compile("c")
    checks.check_process("/bin/a", ["b"])
    denied(checks.check_process, "/bin/a\x00b", [])
    denied(checks.check_process, "/bin/a", ["b", ""])


def test_files_grants_are_quoted_with_their_mode() -> None:
    grants = Grants(
        files=(
            FileGrant(Path("/srv/data"), "/data"),
            FileGrant(Path("/srv/out"), "/data/out", writable=True),
        )
    )
    assert grants.compile("c").granted("files") == "/data (read-only), /data/out (writable)"


def test_every_denial_reaches_the_hook_before_it_is_raised(grants: Grants) -> None:
    seen: list[tuple[str, str, str]] = []
    checks = grants.compile("c", on_deny=lambda *args: seen.append(args))
    checks.check_send("/app/ok")
    denied(checks.check_send, "/nope")
    denied(checks.check_bucket, "nope")
    assert seen == [
        ("send", "/nope", "capability denied: send /nope; granted: /app/*"),
        ("storage", "nope", "capability denied: storage nope; granted: default, cache"),
    ]


def test_a_failing_hook_does_not_hide_the_denial(grants: Grants) -> None:
    def broken(kind: str, resource: str, reason: str) -> None:
        raise RuntimeError("audit down")

    checks = grants.compile("c", on_deny=broken)
    denied(checks.check_send, "/nope")


def test_long_and_unprintable_resources_are_shown_safely(grants: Grants) -> None:
    checks = grants.compile("c")
    error = denied(checks.check_send, "/x" * 400)
    assert len(str(error)) < 500
    error = denied(checks.check_publish, "bad\ntopic")
    assert "\n" not in str(error)


def test_the_granted_list_is_truncated() -> None:
    many = tuple(f"/app/service-number-{i}" for i in range(100))
    error = denied(Grants(send=many).compile("c").check_send, "/other")
    assert str(error).endswith("...")
    assert len(str(error)) < 300


def test_repeated_checks_stay_right_when_caches_are_full() -> None:
    checks = Grants(send=("/app/*",), subscribe=("a.#",)).compile("c", cache_size=4)
    for i in range(50):
        checks.check_send(f"/app/{i}")
        denied(checks.check_send, f"/other/{i}")
        checks.check_subscribe(f"a.{i}")
        denied(checks.check_subscribe, f"b.{i}")


def test_items_list_every_declaration_for_the_audit(grants: Grants) -> None:
    items = grants.items()
    assert (Kind.SEND, "/app/*") in items
    assert (Kind.STORAGE, "bucket default") in items
    assert (Kind.STORAGE, "quota 10485760 bytes") in items
    assert (Kind.NETWORK, "https://*.example.org") in items
    assert (Kind.PROCESS, "/usr/bin/convert -resize * **") in items
    assert any(kind is Kind.FILES and "/data" in text for kind, text in items)
    assert (
        grants.compile("c").granted("network") == "https://api.example.com, https://*.example.org"
    )


def test_the_package_exports_exactly_its_public_names() -> None:
    assert isinstance(security.__all__, tuple)
    public = {name for name in vars(security) if not name.startswith("_")}
    modules = {"annotations"} | {n for n, v in vars(security).items() if type(v) is type(security)}
    assert public - modules <= set(security.__all__)
    assert all(hasattr(security, name) for name in security.__all__)


def test_a_component_cannot_declare_every_program() -> None:
    """'*' as a command is for policy ceilings; a component names its programs."""
    with pytest.raises(ManifestError, match="full path"):
        Grants.from_dict({"process": [{"command": "*", "args": ["**"]}]}, where="x")
