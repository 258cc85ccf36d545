"""The node: ``airssys serve DEPLOYMENT.toml``, its control socket and HTTP endpoints.

* :func:`load_deployment` reads a deployment file (``[node]`` and
  ``[[supervisor]]`` tables; docs/node.md), checked whole before anything starts;
* :class:`Node` runs it: ``async with Node(deployment) as node:``;
* :class:`ControlClient` talks to a running node's control socket
  (newline-delimited JSON, :mod:`airssys.node._protocol`).
"""

from .._dirs import run_base as run_base
from ._client import ControlClient as ControlClient
from ._client import ControlError as ControlError
from ._client import NodeNotRunning as NodeNotRunning
from ._client import find_socket as find_socket
from ._deployment import ComponentEntry as ComponentEntry
from ._deployment import Deployment as Deployment
from ._deployment import DeploymentError as DeploymentError
from ._deployment import MetricsAddress as MetricsAddress
from ._deployment import NodeSettings as NodeSettings
from ._deployment import SupervisorEntry as SupervisorEntry
from ._deployment import default_run_dir as default_run_dir
from ._deployment import load_deployment as load_deployment
from ._deployment import parse_deployment as parse_deployment
from ._deployment import to_build as to_build
from ._deployment import with_cluster as with_cluster
from ._logs import LogRing as LogRing
from ._logs import LogTee as LogTee
from ._logs import render_text as render_text
from ._node import ActorSummary as ActorSummary
from ._node import Node as Node
from ._node import NodeError as NodeError
from ._protocol import ProtocolError as ProtocolError
from ._protocol import Request as Request
from ._protocol import message_value as message_value
from ._protocol import parse_request as parse_request
from ._serve import run_node as run_node
from ._serve import serve as serve

__all__ = (
    "ActorSummary",
    "ComponentEntry",
    "ControlClient",
    "ControlError",
    "Deployment",
    "DeploymentError",
    "LogRing",
    "LogTee",
    "MetricsAddress",
    "Node",
    "NodeError",
    "NodeNotRunning",
    "NodeSettings",
    "ProtocolError",
    "Request",
    "SupervisorEntry",
    "default_run_dir",
    "find_socket",
    "load_deployment",
    "message_value",
    "parse_deployment",
    "render_text",
    "run_base",
    "run_node",
    "serve",
    "to_build",
    "with_cluster",
)
