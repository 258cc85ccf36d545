"""Host services for components, each behind a capability check.

* :class:`HttpService`: outbound HTTP, every hop checked against the ``network``
  grant before a connection is made; bounded in time and response size.
* :class:`ProcessService`: a granted executable run bare (no shell, empty
  environment, a fresh working directory), with a timeout and capped output.

Each takes the component's checks (a :class:`~airssys.security.CompiledGrants`); a
denial is :class:`~airssys.errors.CapabilityDenied`, audited by the checks'
``on_deny`` hook. The calls block: run them on a worker thread. Binding them to a
component's imports is the runtime's business, not this package's.
"""

from ..errors import ResponseTooLarge as ResponseTooLarge
from ._http import HOST_HEADERS as HOST_HEADERS
from ._http import METHODS as METHODS
from ._http import HttpError as HttpError
from ._http import HttpResponse as HttpResponse
from ._http import HttpService as HttpService
from ._http import HttpTimeout as HttpTimeout
from ._http import InvalidHttpRequest as InvalidHttpRequest
from ._http import TooManyRedirects as TooManyRedirects
from ._http import UrlChecks as UrlChecks
from ._process import ProcessChecks as ProcessChecks
from ._process import ProcessError as ProcessError
from ._process import ProcessResult as ProcessResult
from ._process import ProcessService as ProcessService
from ._process import ProcessTimeout as ProcessTimeout

__all__ = (
    "HOST_HEADERS",
    "METHODS",
    "HttpError",
    "HttpResponse",
    "HttpService",
    "HttpTimeout",
    "InvalidHttpRequest",
    "ProcessChecks",
    "ProcessError",
    "ProcessResult",
    "ProcessService",
    "ProcessTimeout",
    "ResponseTooLarge",
    "TooManyRedirects",
    "UrlChecks",
)
