"""The services' probe component, for the storage commands' end-to-end test."""

from tests.services.conftest import probe as probe
