"""The WebAssembly layer: the only part of airssys that imports wasmtime.

It knows nothing of actors: it loads, validates, caches, limits and calls
components. ``Runtime`` owns the engine; ``ComponentInstance`` owns one Store.
"""

from ._cache import CacheStats as CacheStats
from ._cache import CompileCache as CompileCache
from ._cache import default_cache_dir as default_cache_dir
from ._caller import LOG_LEVELS as LOG_LEVELS
from ._caller import DetachedHost as DetachedHost
from ._caller import Host as Host
from ._component import Component as Component
from ._fastcall import bytes_from_lane as bytes_from_lane
from ._fastcall import lane_from_bytes as lane_from_bytes
from ._hostservices import HostServices as HostServices
from ._hostservices import StorageSource as StorageSource
from ._instance import BULK as BULK
from ._instance import BULK_TEXT as BULK_TEXT
from ._instance import LIST_PAYLOAD_MAX as LIST_PAYLOAD_MAX
from ._instance import ComponentInstance as ComponentInstance
from ._instance import Lane as Lane
from ._instance import Limits as Limits
from ._instance import Mount as Mount
from ._outcome import OUTCOMES as OUTCOMES
from ._outcome import Outcome as Outcome
from ._outcome import keyvalue_error as keyvalue_error
from ._outcome import outcome_of as outcome_of
from ._outcome import text_error as text_error
from ._recorder import Recorder as Recorder
from ._recorder import ReplayDivergence as ReplayDivergence
from ._recorder import decode_inputs as decode_inputs
from ._recorder import encode_inputs as encode_inputs
from ._runtime import Runtime as Runtime
from ._runtime import looks_like_wat as looks_like_wat
from ._world import CALLBACK as CALLBACK
from ._world import HANDLER as HANDLER
from ._world import LOGGING as LOGGING
from ._world import MESSAGING as MESSAGING
from ._world import WorldInfo as WorldInfo

__all__ = (
    "BULK",
    "BULK_TEXT",
    "CALLBACK",
    "HANDLER",
    "LIST_PAYLOAD_MAX",
    "LOGGING",
    "LOG_LEVELS",
    "MESSAGING",
    "OUTCOMES",
    "CacheStats",
    "CompileCache",
    "Component",
    "ComponentInstance",
    "DetachedHost",
    "Host",
    "HostServices",
    "Lane",
    "Limits",
    "Mount",
    "Outcome",
    "Recorder",
    "ReplayDivergence",
    "Runtime",
    "StorageSource",
    "WorldInfo",
    "bytes_from_lane",
    "decode_inputs",
    "default_cache_dir",
    "encode_inputs",
    "keyvalue_error",
    "lane_from_bytes",
    "looks_like_wat",
    "outcome_of",
    "text_error",
)
