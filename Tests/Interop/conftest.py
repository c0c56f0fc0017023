"""Fixtures for the ocpp-proxy interop suite.

The central fixture is ``h`` (a ``Harness``): it starts CSMS stand-ins, proxy
processes and charger connections for one test, and tears them down in the
right order (chargers, then proxies -- which must exit 0 on SIGTERM --, then
CSMS servers).
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import pytest

from harness import (
    LOCALHOST,
    V16,
    OcppCsms,
    ProxyProcess,
    RawCsms,
    RawWsServer,
    SilentTcpServer,
    connect_ocpp_charger,
    connect_raw,
    find_proxy_binary,
    proxy_config,
    start_proxy,
)


@pytest.fixture(scope="session")
def proxy_binary() -> Path:
    binary = find_proxy_binary()
    if binary is None or not binary.exists():
        pytest.fail(
            "ocpp-proxy binary not found: set OCPP_PROXY_BIN or run `swift build` "
            "(expected .build/debug/ocpp-proxy in the repository root)",
            pytrace=False,
        )
    return binary


class Harness:
    def __init__(self, binary: Path, tmp_path: Path):
        self.binary = binary
        self.tmp_path = tmp_path
        self.proxies: list[ProxyProcess] = []
        self.servers: list = []
        self.clients: list = []

    # -- upstream stand-ins ----------------------------------------------------
    async def csms(self, version: str = V16, **kwargs) -> OcppCsms:
        server = await OcppCsms(version, **kwargs).start()
        self.servers.append(server)
        return server

    async def raw_csms(self, version: str | None = V16, **kwargs) -> RawCsms:
        server = await RawCsms(version, **kwargs).start()
        self.servers.append(server)
        return server

    async def raw_ws_server(self, subprotocol: str | None = V16, **kwargs) -> RawWsServer:
        server = await RawWsServer(subprotocol, **kwargs).start()
        self.servers.append(server)
        return server

    async def silent_server(self) -> SilentTcpServer:
        server = await SilentTcpServer().start()
        self.servers.append(server)
        return server

    # -- the proxy -------------------------------------------------------------
    def config(self, upstream_url: str, upstream_version: str = V16, overrides: dict | None = None,
               **options) -> dict:
        """``harness.proxy_config`` for this test (a translating proxy's state file in ``tmp_path``)."""
        if options.get("translate") and options.get("state") is None:
            options["state"] = self.tmp_path / "state.sqlite"
        return proxy_config(upstream_url, upstream_version, overrides=overrides, **options)

    async def proxy(
        self,
        upstream_url: str | None = None,
        upstream_version: str = V16,
        overrides: dict | None = None,
        *,
        config: dict | None = None,
        workdir: Path | None = None,
        extra_args: list[str] | None = None,
        env: dict | None = None,
        wait_ready: bool = True,
        **options,
    ) -> ProxyProcess:
        """``harness.start_proxy`` with ``config`` (or ``self.config(upstream_url, ..., **options)``), tracked:
        stopped with SIGTERM at teardown, where it must exit 0.  ``workdir`` defaults to ``tmp_path/proxyN``."""
        if config is None:
            assert upstream_url is not None, "h.proxy needs an upstream URL or a config"
            config = self.config(upstream_url, upstream_version, overrides, **options)
        else:
            assert overrides is None and not options, "h.proxy: config= excludes overrides and config options"
        return await start_proxy(
            self.binary, workdir or self.tmp_path / f"proxy{len(self.proxies)}", config, extra_args=extra_args,
            env=env, wait_ready=wait_ready, started=self.proxies,
        )

    async def restart(self, proxy: ProxyProcess, *, wait_ready: bool = True) -> ProxyProcess:
        """Start a stopped or killed proxy again: same configuration, workdir, arguments and environment."""
        assert not proxy.alive(), "stop() or kill() the proxy before restarting it"
        run = sum(1 for p in self.proxies if p.workdir == proxy.workdir)
        return await start_proxy(
            self.binary, proxy.workdir, proxy.config, extra_args=proxy.extra_args, env=proxy.env_overrides, run=run,
            wait_ready=wait_ready, started=self.proxies,
        )

    async def pair(self, version: str = V16, raw: bool = False, overrides: dict | None = None, *, cp_factory=None,
                   **kwargs):
        """A CSMS (ocpp-package, with ``cp_factory`` if given, or raw) and a proxy in front of it, the CSMS's
        version upstream; ``kwargs`` go to ``proxy``."""
        csms = await (self.raw_csms(version) if raw else self.csms(version, cp_factory=cp_factory))
        proxy = await self.proxy(csms.url, version, overrides, **kwargs)
        return proxy, csms

    # -- chargers --------------------------------------------------------------
    async def charger(self, proxy: ProxyProcess, identity: str, version: str = V16, cp_factory=None):
        charger = await connect_ocpp_charger(proxy.url(identity), version, identity, cp_factory=cp_factory)
        self.clients.append(charger)
        return charger

    async def raw_charger(self, proxy: ProxyProcess, identity: str, subprotocols: list[str] | None, **kwargs):
        ws = await connect_raw(proxy.url(identity), subprotocols, **kwargs)
        self.clients.append(ws)
        return ws

    def track(self, client) -> None:
        self.clients.append(client)

    # -- teardown --------------------------------------------------------------
    async def teardown(self) -> None:
        problems: list[str] = []
        for client in reversed(self.clients):
            with contextlib.suppress(BaseException):
                if hasattr(client, "aclose"):
                    await client.aclose()
                else:
                    await client.close()
        for proxy in self.proxies:
            if proxy.returncode is not None or proxy.proc is None:
                continue
            try:
                rc = await proxy.stop(signal.SIGTERM, timeout=15)
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if rc != 0:
                problems.append(f"ocpp-proxy exited with status {rc} after SIGTERM (expected 0){proxy.describe()}")
        for proxy in self.proxies:
            proxy.kill()
        for server in reversed(self.servers):
            with contextlib.suppress(BaseException):
                await server.close()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
async def h(proxy_binary, tmp_path):
    harness = Harness(proxy_binary, tmp_path)
    try:
        yield harness
    finally:
        await harness.teardown()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the stderr of every proxy the test started to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        harness = item.funcargs.get("h") if hasattr(item, "funcargs") else None
        if isinstance(harness, Harness):
            for i, proxy in enumerate(harness.proxies):
                report.sections.append((f"ocpp-proxy #{i} stderr", proxy.stderr()[-20000:]))


__all__ = ["Harness", "LOCALHOST"]
