"""``LocalVenue``: the engine, its market driver and the Binance protocol on loopback.

``async with LocalVenue(VenueConfig(...)) as venue:`` starts everything in the running event
loop on ephemeral ports of 127.0.0.1: REST on plain HTTP (``venue.rest_url``), websockets on
TLS (``venue.ws_url``, trusted through ``venue.client_ssl_context``). ``LocalVenue.in_thread``
runs the same in a thread with its own loop, for synchronous callers (cryptofeed reads symbol
information with a blocking HTTP call).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from aiohttp import web

from marketmaker.credentials import ApiCredentials
from marketmaker.sim.binance import BinanceProtocol, RateLimits
from marketmaker.sim.drivers import ReplayMarket, SyntheticMarket
from marketmaker.sim.engine import Exchange, Instrument
from marketmaker.sim.faults import VenueFaults
from marketmaker.sim.tls import LOOPBACK, LoopbackCertificate

__all__ = ["KNOWN_INSTRUMENTS", "LocalVenue", "ThreadedVenue", "VenueConfig"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Trading rules of the symbols the venue lists (Binance's, as of 2026).
KNOWN_INSTRUMENTS: dict[str, Instrument] = {
    "BTCUSDT": Instrument("BTCUSDT", tick_size=Decimal("0.1"), step_size=Decimal("0.001"), min_notional=Decimal("100")),
    "ETHUSDT": Instrument("ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"), min_notional=Decimal("20")),
    "SOLUSDT": Instrument("SOLUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.01"), min_notional=Decimal("5")),
}
#: Where the synthetic market starts each symbol's latent price.
SYNTHETIC_START_PRICES: dict[str, Decimal] = {
    "BTCUSDT": Decimal("60000"),
    "ETHUSDT": Decimal("3000"),
    "SOLUSDT": Decimal("150"),
}
#: How often the driver task moves the market to the venue clock.
DRIVER_STEP_S = 0.02

Driver = Literal["synthetic", "replay", "none"]


@dataclass(frozen=True)
class VenueConfig:
    """How to start a :class:`LocalVenue`.

    Parameters
    ----------
    symbols
        Listed symbols (from :data:`KNOWN_INSTRUMENTS`).
    driver
        ``synthetic`` (seeded price process and background flow), ``replay`` (``recording``),
        or ``none`` (an empty market that only the participants and the caller move).
    recording
        The recording a ``replay`` driver plays (its symbol must be among ``symbols``), at
        recorded speed.
    seed
        The synthetic market's seed.
    credentials
        The API keys accepted, one account each; one random key is generated when empty.
    balance
        Each account's starting USDT wallet.
    rate_limits
        Published and enforced limits.
    faults
        The faults switched on at start (the live object is ``LocalVenue.faults``).
    listen_key_lifetime_s, ws_ping_interval_s
        See :class:`~marketmaker.sim.binance.BinanceProtocol`.
    rest_port, ws_port
        Loopback ports to listen on; 0 picks free ones.
    synthetic
        Keyword parameters of every :class:`SyntheticMarket` (``initial_price``, ``volatility``,
        ``drift``, ``jump_intensity``, ``jump_size``, ...; the config's ``[sim.synthetic]``).
    replay_speed
        The replay's speed, times recorded time.
    """

    symbols: tuple[str, ...] = ("BTCUSDT",)
    driver: Driver = "synthetic"
    recording: Path | None = None
    seed: int = 1
    credentials: tuple[ApiCredentials, ...] = ()
    balance: Decimal = Decimal("10000")
    rate_limits: RateLimits = field(default_factory=RateLimits)
    faults: VenueFaults = field(default_factory=VenueFaults)
    listen_key_lifetime_s: float = 3600.0
    ws_ping_interval_s: float = 180.0
    rest_port: int = 0
    ws_port: int = 0
    synthetic: Mapping[str, float | int] = field(default_factory=dict)
    replay_speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("VenueConfig.symbols: list at least one symbol")
        unknown = [s for s in self.symbols if s not in KNOWN_INSTRUMENTS]
        if unknown:
            raise ValueError(
                f"VenueConfig.symbols: {', '.join(unknown)} not listed (known: {', '.join(KNOWN_INSTRUMENTS)})"
            )
        if self.driver not in ("synthetic", "replay", "none"):
            raise ValueError(f"VenueConfig.driver: {self.driver!r} is not synthetic, replay or none")
        if (self.driver == "replay") != (self.recording is not None):
            raise ValueError(
                "VenueConfig.recording: a replay driver needs a recording, and only a replay driver takes one"
            )
        if len(self.symbols) != len(set(self.symbols)):
            raise ValueError("VenueConfig.symbols: a symbol is listed twice")


class LocalVenue:
    """The local venue, started by ``async with`` in the running loop.

    Attributes
    ----------
    rest_url, ws_url : str
        ``http://127.0.0.1:<port>`` and ``wss://127.0.0.1:<port>`` (append ``/public``,
        ``/market``, ``/private`` for the routes).
    client_ssl_context : ssl.SSLContext
        Trusts the venue's certificate; pass it to websocket clients.
    credentials : tuple of ApiCredentials
        The keys the venue accepts.
    engine : Exchange
    faults : VenueFaults
        The live switches.

    Examples
    --------
    >>> import asyncio
    >>> async def main() -> str:
    ...     async with LocalVenue(VenueConfig(driver="none")) as venue:
    ...         return venue.rest_url.split(":")[1]
    >>> asyncio.run(main())
    '//127.0.0.1'
    """

    def __init__(self, config: VenueConfig = VenueConfig()) -> None:
        self.config = config
        # A copy: the config's switches are where it starts, each venue changes its own.
        self.faults = dataclasses.replace(config.faults)
        self.credentials = config.credentials or (ApiCredentials(secrets.token_hex(32), secrets.token_hex(32)),)
        start_ms = self.now_ms()
        self.engine = Exchange([KNOWN_INSTRUMENTS[s] for s in config.symbols], start_ms=start_ms)
        for credentials in self.credentials:
            self.engine.add_account(credentials.key_id, config.balance)
        self._certificate = LoopbackCertificate.create()
        self.client_ssl_context = self._certificate.client_context()
        #: The websocket site's certificate (PEM, public): what an out-of-process client must trust.
        self.certificate_pem = self._certificate.certificate_pem
        self.markets: list[SyntheticMarket | ReplayMarket] = []
        if config.driver == "synthetic":
            self.markets = [
                self._synthetic_market(symbol, config.seed + i, config.synthetic)
                for i, symbol in enumerate(config.symbols)
            ]
        elif config.driver == "replay":
            assert config.recording is not None
            self.markets = [ReplayMarket(self.engine, config.recording, speed=config.replay_speed)]
        # The protocol subscribes after the drivers seeded the book: the seeding is the state the
        # first snapshot shows, not a burst of stream messages.
        self.protocol = BinanceProtocol(
            self.engine,
            credentials=self.credentials,
            clock=self.now_ms,
            faults=self.faults,
            rate_limits=config.rate_limits,
            listen_key_lifetime_s=config.listen_key_lifetime_s,
            ws_ping_interval_s=config.ws_ping_interval_s,
        )
        #: While True the driver does not move the market (it catches up on resume).
        self.market_paused = False
        self.rest_url = ""
        self.ws_url = ""
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _synthetic_market(self, symbol: str, seed: int, params: Mapping[str, float | int]) -> SyntheticMarket:
        """A synthetic market with the given parameters; an unknown name is a clear error."""
        accepted = set(inspect.signature(SyntheticMarket).parameters) - {"exchange", "symbol", "seed", "start_ms"}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise ValueError(
                f"[sim.synthetic]: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(accepted))}"
            )
        given = dict(params)
        initial_price = Decimal(str(given.pop("initial_price", SYNTHETIC_START_PRICES[symbol])))
        return SyntheticMarket(self.engine, symbol, seed=seed, initial_price=initial_price, **given)  # type: ignore[arg-type]

    def now_ms(self) -> int:
        """The venue's clock: the wall clock plus the ``clock_skew_ms`` fault."""
        return time.time_ns() // 1_000_000 + self.faults.clock_skew_ms

    def expire_listen_keys(self) -> int:
        """Expires every listenKey now (fault); returns how many there were."""
        return self.protocol.expire_listen_keys()

    async def start(self) -> None:
        """Starts the sites, the protocol's timers, the engine clock and the driver."""
        rest = web.AppRunner(self.protocol.rest_app(), access_log=None)
        websockets = web.AppRunner(self.protocol.websocket_app(), access_log=None)
        for runner in (rest, websockets):
            await runner.setup()
            self._runners.append(runner)
        rest_site = web.TCPSite(rest, LOOPBACK, self.config.rest_port)
        ws_site = web.TCPSite(websockets, LOOPBACK, self.config.ws_port, ssl_context=self._certificate.server_context())
        await rest_site.start()
        await ws_site.start()
        self.rest_url = f"http://{LOOPBACK}:{_port(rest)}"
        self.ws_url = f"wss://{LOOPBACK}:{_port(websockets)}"
        self.protocol.start()
        self._tasks.append(asyncio.create_task(self._advance_engine_clock()))
        if self.markets:
            self._tasks.append(asyncio.create_task(self._drive_market()))
        logger.info("local venue up: REST %s, websockets %s", self.rest_url, self.ws_url)

    async def close(self) -> None:
        """Stops the driver, the protocol and the sites."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.protocol.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> LocalVenue:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def _advance_engine_clock(self) -> None:
        """Runs the engine's timed events (mark prices, funding) on the venue clock."""
        while True:
            self.engine.advance(self.now_ms())
            await asyncio.sleep(0.1)

    async def _drive_market(self) -> None:
        """Moves the market to the venue clock every ``DRIVER_STEP_S``."""
        while True:
            if not self.market_paused:
                now_ms = self.now_ms()
                for market in self.markets:
                    market.step(now_ms)
            await asyncio.sleep(DRIVER_STEP_S)

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, config: VenueConfig = VenueConfig()) -> Iterator[ThreadedVenue]:
        """Runs a venue in a thread with its own event loop for the ``with`` block.

        Examples
        --------
        >>> with LocalVenue.in_thread(VenueConfig(driver="none")) as venue:
        ...     venue.call(lambda v: v.engine.update_id("BTCUSDT"))
        0
        """
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="local-venue", daemon=True)
        thread.start()
        venue = cls(config)
        try:
            asyncio.run_coroutine_threadsafe(venue.start(), loop).result(timeout=30)
            yield ThreadedVenue(venue, loop)
        finally:
            asyncio.run_coroutine_threadsafe(venue.close(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()


def _port(runner: web.AppRunner) -> int:
    server = runner.addresses[0]
    return int(server[1])


class ThreadedVenue:
    """A :class:`LocalVenue` running in another thread: its addresses, and ``call`` to act on it."""

    def __init__(self, venue: LocalVenue, loop: asyncio.AbstractEventLoop) -> None:
        self._venue = venue
        self._loop = loop
        self.rest_url = venue.rest_url
        self.ws_url = venue.ws_url
        self.client_ssl_context: ssl.SSLContext = venue.client_ssl_context
        self.credentials = venue.credentials

    def call(self, function: Callable[[LocalVenue], T]) -> T:
        """Runs ``function(venue)`` in the venue's loop (engine, faults, driver) and returns its result."""

        async def run() -> T:
            return function(self._venue)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)
