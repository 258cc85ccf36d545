"""The same actors across nodes, over NATS (the ``cluster`` extra: nats-py).

``async with join_cluster(system, "nats://127.0.0.1:4222", node="a") as cluster:``
makes every address of every joined node reachable from this one: sends, asks,
publishes and component requests to an address another node serves cross over
NATS (bytes only, multicodec prefix kept), with the same deadlines and typed
errors as locally. ``airssys serve DEPLOYMENT --cluster nats://HOST:PORT`` joins a
node (docs/cluster.md).
"""

from ._cluster import Cluster as Cluster
from ._cluster import ClusterError as ClusterError
from ._cluster import NodeInfo as NodeInfo
from ._cluster import join_cluster as join_cluster
from ._jetstream import Bridge as Bridge
from ._jetstream import JetStreamJournal as JetStreamJournal
from ._jetstream import Owners as Owners
from ._jetstream import ensure_stream as ensure_stream
from ._jetstream import local_copy as local_copy
from ._subjects import address_subject as address_subject
from ._subjects import decode_token as decode_token
from ._subjects import encode_token as encode_token
from ._subjects import topic_subject as topic_subject

__all__ = (
    "Bridge",
    "Cluster",
    "ClusterError",
    "JetStreamJournal",
    "NodeInfo",
    "Owners",
    "address_subject",
    "decode_token",
    "encode_token",
    "ensure_stream",
    "join_cluster",
    "local_copy",
    "topic_subject",
)
