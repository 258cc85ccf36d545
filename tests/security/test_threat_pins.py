"""Figures docs/security.md states about what a component can reach, pinned."""

from __future__ import annotations

from typing import Any

from airssys.runtime import LIST_PAYLOAD_MAX, HostServices
from airssys.security import Grants, Policy, TrustLevel


class _NoStorage:
    @property
    def storage(self) -> Any:
        raise AssertionError("not asked for")


def test_a_components_http_responses_are_capped_at_what_it_can_receive() -> None:
    """2,796,200 bytes: the most a list<u8> result carries into a component (the
    README once said 16 MiB, the HTTP service's default for Python callers)."""
    checks = Grants.from_dict({"network": ["https://example.com"]}).compile("/app/c")
    services = HostServices(checks, _NoStorage(), Policy(), TrustLevel.TRUSTED)
    assert services.http.max_response == LIST_PAYLOAD_MAX == 2_796_200
