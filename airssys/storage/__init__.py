"""Key-value storage for components: backends behind one Protocol, buckets behind grants.

* **Backends** (:class:`Backend`): bytes keys and values in string namespaces, with
  atomic counters, compare-and-swap, batches, prefix paging and O(1) usage counters.

  - :class:`SqliteBackend`, the embedded default: one SQLite file per system (WAL,
    ``synchronous=NORMAL``: a process crash loses nothing committed; a power loss
    can lose the last transactions but never corrupts the file).
  - :class:`LmdbBackend`: LMDB (``pip install 'airssys[storage]'``), faster reads.
  - :class:`MemoryBackend`: for tests and ``airssys.testing.MockHost``.

  :func:`open_backend` opens one by kind under a data directory
  (:func:`default_data_dir`).
* **The service** (:class:`KeyValue`): what a component's host calls use.
  ``KeyValue(backend, checks=..., quota=..., max_keys=..., shared=...)``;
  ``open(bucket)`` checks the grant (:class:`~airssys.errors.CapabilityDenied`) and
  returns a :class:`Bucket` (wasi:keyvalue's store, atomics and batch, plus a prefix
  scan). Each component's buckets are its own (``<component>/<bucket>``) unless the
  policy shares one (``shared/<bucket>``); its quota bounds them together
  (:class:`~airssys.errors.QuotaExceeded`, nothing written).
* **Backup** (:func:`export`, :func:`import_`, :func:`ls`): JSON lines or msgpack.

Example::

    from airssys.security import Grants
    from airssys.storage import KeyValue, open_backend

    backend = open_backend("sqlite")
    checks = Grants(buckets=("default",)).compile("/app/worker")
    kv = KeyValue(backend, checks=checks, quota=10 << 20, max_keys=10_000)
    bucket = kv.open("default")
    bucket.set("greeting", b"hello")
    bucket.increment("visits", 1)
"""

from ..errors import QuotaExceeded as QuotaExceeded
from ..errors import StorageError as StorageError
from ._backend import DEFAULT_PAGE as DEFAULT_PAGE
from ._backend import MAX_KEY_BYTES as MAX_KEY_BYTES
from ._backend import MAX_PAGE as MAX_PAGE
from ._backend import Backend as Backend
from ._backend import InvalidKey as InvalidKey
from ._backend import KeyPage as KeyPage
from ._backend import NotACounter as NotACounter
from ._backend import Quota as Quota
from ._backend import Usage as Usage
from ._backend import parent_of as parent_of
from ._kv import BUCKET_RULE as BUCKET_RULE
from ._kv import MAX_BUCKET as MAX_BUCKET
from ._kv import SHARED as SHARED
from ._kv import Bucket as Bucket
from ._kv import KeyResponse as KeyResponse
from ._kv import KeyValue as KeyValue
from ._kv import check_bucket_name as check_bucket_name
from ._lmdb import INSTALL_HINT as INSTALL_HINT
from ._lmdb import LmdbBackend as LmdbBackend
from ._memory import MemoryBackend as MemoryBackend
from ._paths import KINDS as KINDS
from ._paths import BackendKind as BackendKind
from ._paths import default_data_dir as default_data_dir
from ._paths import open_backend as open_backend
from ._sqlite import SqliteBackend as SqliteBackend
from ._staged import StagedBackend as StagedBackend
from ._transfer import FORMATS as FORMATS
from ._transfer import Format as Format
from ._transfer import NamespaceUsage as NamespaceUsage
from ._transfer import TransferCounts as TransferCounts
from ._transfer import export as export
from ._transfer import import_ as import_
from ._transfer import ls as ls

__all__ = (
    "BUCKET_RULE",
    "DEFAULT_PAGE",
    "FORMATS",
    "INSTALL_HINT",
    "KINDS",
    "MAX_BUCKET",
    "MAX_KEY_BYTES",
    "MAX_PAGE",
    "SHARED",
    "Backend",
    "BackendKind",
    "Bucket",
    "Format",
    "InvalidKey",
    "KeyPage",
    "KeyResponse",
    "KeyValue",
    "LmdbBackend",
    "MemoryBackend",
    "NamespaceUsage",
    "NotACounter",
    "Quota",
    "QuotaExceeded",
    "SqliteBackend",
    "StagedBackend",
    "StorageError",
    "TransferCounts",
    "Usage",
    "check_bucket_name",
    "default_data_dir",
    "export",
    "import_",
    "ls",
    "open_backend",
    "parent_of",
)
