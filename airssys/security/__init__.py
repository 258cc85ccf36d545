"""Capability security: deny by default, grants declared, bounded by policy, audited.

A component reaches only what its manifest declares and the operator's policy
allows:

* **Grants** (:class:`Grants`): what a component declares in the ``[capabilities]``
  table of its Component.toml. Nothing is granted that is not declared. The table,
  in Component.toml::

    [capabilities]
    # addresses it may send to (and request from), topics it may publish and subscribe to;
    # '*' is one segment, '#' any number of segments (zero or more)
    messaging = { send = ["/app/*"], publish = ["orders.*"], subscribe = ["orders.#"] }
    # key-value buckets it may open ('*': any of its own), with a quota over them all
    storage = { buckets = ["default", "cache"], quota = "10MiB", keys = 10000 }
    # host directories (relative to this file) mounted at guest paths, read-only by default
    files = [{ host = "./data", guest = "/data", writable = false }]
    # outbound hosts: scheme://host[:port] (see airssys.security._hosts)
    network = ["https://api.example.com", "https://*.example.org:443"]
    # executables by absolute path; one pattern per argument, '*' any text within an
    # argument, '**' (last) any remaining arguments; no args = no arguments at all
    process = [{ command = "/usr/bin/convert", args = ["-resize", "*", "**"] }]

  Python callers pass the same shape as a dict (``capabilities={...}``,
  :meth:`Grants.from_dict`). A kind or key not listed above is refused, naming the
  accepted ones.

* **Policy** (:class:`Policy`): per trust level (``trusted``, ``unknown``, ``dev``)
  a :class:`Ceiling` bounds what may be granted; a component declaring more does
  not start (:class:`~airssys.errors.PolicyViolation` lists every excess). The
  default policy is safe for unknown code.
* **Checks** (:class:`CompiledGrants`): compiled once per component, run on every
  host call; a refusal is :class:`~airssys.errors.CapabilityDenied` (also a
  ``PermissionError``) reading ``capability denied: <kind> <resource>; granted: ...``.
* **Audit** (:class:`AuditLog`): grants at start and denials at run time, in a
  bounded ring and optionally a JSON-lines file; floods are summarised, counted,
  never dropped silently.

Patterns: addresses and topics use ``*`` (one segment) and ``#`` (any number of
segments), as the broker does (:mod:`._patterns`); network hosts use Spin's
``scheme://host[:port]`` grammar (:mod:`._hosts`).

Python actors are trusted code: they run in the host process with its full
authority, and nothing here confines them. Capabilities bound WebAssembly
components, whose only way out is the host calls these checks guard.
"""

from ._audit import DENY as DENY
from ._audit import GRANT as GRANT
from ._audit import AuditCounts as AuditCounts
from ._audit import AuditLog as AuditLog
from ._audit import AuditRecord as AuditRecord
from ._audit import AuditScope as AuditScope
from ._audit import Decision as Decision
from ._grants import CompiledGrants as CompiledGrants
from ._grants import DenyHook as DenyHook
from ._grants import FileGrant as FileGrant
from ._grants import Grants as Grants
from ._grants import Kind as Kind
from ._grants import ProcessGrant as ProcessGrant
from ._grants import parse_capabilities as parse_capabilities
from ._hosts import HostMatcher as HostMatcher
from ._hosts import HostPattern as HostPattern
from ._hosts import compile_hosts as compile_hosts
from ._hosts import covered_by as hosts_covered_by
from ._hosts import covers as host_covers
from ._hosts import split_url as split_url
from ._patterns import ADDRESS as ADDRESS
from ._patterns import TOPIC as TOPIC
from ._patterns import Matcher as Matcher
from ._patterns import SegmentPattern as SegmentPattern
from ._patterns import compile_patterns as compile_patterns
from ._patterns import covered_by as covered_by
from ._patterns import covers as covers
from ._policy import Ceiling as Ceiling
from ._policy import Excess as Excess
from ._policy import FileRoot as FileRoot
from ._policy import Policy as Policy
from ._policy import TrustLevel as TrustLevel

__all__ = (
    "ADDRESS",
    "DENY",
    "GRANT",
    "TOPIC",
    "AuditCounts",
    "AuditLog",
    "AuditRecord",
    "AuditScope",
    "Ceiling",
    "CompiledGrants",
    "Decision",
    "DenyHook",
    "Excess",
    "FileGrant",
    "FileRoot",
    "Grants",
    "HostMatcher",
    "HostPattern",
    "Kind",
    "Matcher",
    "Policy",
    "ProcessGrant",
    "SegmentPattern",
    "TrustLevel",
    "compile_hosts",
    "compile_patterns",
    "covered_by",
    "covers",
    "host_covers",
    "hosts_covered_by",
    "parse_capabilities",
    "split_url",
)
