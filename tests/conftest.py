"""Shared fixtures: where the recorded market data lives, and skipping when it is absent; the
local venue on ephemeral loopback ports.

The recorded data is kept outside the repository, in ``../shared/data`` next to the project
root (a user's fresh clone has no ``../shared``): tests that need it take the ``data_file``
fixture and are skipped with the reason when the file is not there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from marketmaker.sim.server import LocalVenue, VenueConfig

#: ``<repo>/../shared/data``, computed from this file's location so that it does not depend on
#: the working directory pytest was started from.
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    # pyproject turns warnings into errors. When a Hypothesis test fails, Hypothesis's pytest
    # plugin imports libcst (if installed) to suggest a patch, and libcst trips a deprecation
    # warning in mypy_extensions: that would turn a readable test failure into an INTERNALERROR.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The recorded-data folder; skips the test when it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"recorded market data not found at {SHARED_DATA_DIR} (../shared/data)")
    return SHARED_DATA_DIR


@pytest.fixture(scope="session")
def data_file(data_dir: Path) -> Callable[[str], Path]:
    """``data_file("binance-usdm/btcusdt_20240808.gz")``: the path, or a skip when missing."""

    def locate(relative: str) -> Path:
        path = data_dir / relative
        if not path.is_file():
            pytest.skip(f"recorded data file {relative} not found in {data_dir}")
        return path

    return locate


@pytest.fixture
def venue_config() -> VenueConfig:
    """The configuration ``local_venue`` starts with: override it in a module, or parametrize it
    (``@pytest.mark.parametrize("venue_config", [VenueConfig(...)])``)."""
    return VenueConfig()


@pytest_asyncio.fixture
async def local_venue(venue_config: VenueConfig) -> AsyncIterator[LocalVenue]:
    """A started :class:`~marketmaker.sim.server.LocalVenue` in the test's event loop: REST at
    ``rest_url``, websockets at ``ws_url`` (trust ``client_ssl_context``), accepted keys in
    ``credentials``. Stopped, with its connections closed, after the test."""
    async with LocalVenue(venue_config) as venue:
        yield venue
