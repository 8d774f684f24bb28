"""`shop up`: run a folder of Knative manifests on this machine.

Everything is planned before anything starts (manifests admitted, profile read, ports chosen,
commands found), so that a mistake stops `shop up` with its file and line and leaves nothing
running. Then: the SMTP server, the watchdog, the broker and every Knative Service start;
`shop up` waits until each answers, prints the table and `shop up: ready`, and runs until
Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from shop.broker.otlp import PATH as OTLP_PATH
from shop.manifests import ManifestError, Topology, load_topology
from shop.runner.addresses import LOCAL_HOST, LocalAddresses, NoFreePort, ports_after
from shop.runner.config import UpConfig
from shop.runner.console import Console, LogEcho
from shop.runner.endpoints import endpoints_document, shadowed_services, write_json
from shop.runner.health import HealthProbe, wait_until_ready
from shop.runner.identity import (
    IdentityError,
    IdentityRuntime,
    LocalIdentity,
    check_verifiers_have_an_issuer,
    oidc_requested,
    plan_identity,
)
from shop.runner.mail import NAME as MAIL_NAME
from shop.runner.mail import LocalMailServer, listening_socket
from shop.runner.plan import (
    LocalContext,
    PlanError,
    ProcessPlan,
    check_overrides,
    display_names,
    plan_broker,
    plan_service,
    service_port,
)
from shop.runner.profile import LocalProfile, ProfileError, load_profile
from shop.runner.supervisor import ManagedProcess, RestartPolicy
from shop.runner.table import render, rows
from shop.runner.watchdog import Watchdog

EXIT_STOPPED = 0
EXIT_NOT_READY = 1
EXIT_CANNOT_START = 2
_LOG_TAIL_LINES = 20


class CannotStart(Exception):
    """Something outside the manifests is in the way: a taken port, a state dir in use."""


@dataclass
class _Prepared:
    topology: Topology
    plans: list[ProcessPlan]
    table: list[str]
    smtp_socket: socket.socket
    lock: int
    identity: LocalIdentity | None = None
    identity_socket: socket.socket | None = None

    def close_sockets(self) -> None:
        self.smtp_socket.close()
        if self.identity_socket is not None:
            self.identity_socket.close()


def run(
    config: UpConfig,
    *,
    stdout: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    policy: RestartPolicy | None = None,
    echo: LogEcho | None = None,
) -> int:
    """Run `shop up` in the foreground until a signal; the exit code.

    0 after Ctrl-C/SIGTERM/SIGHUP, 1 when some process never answered, 2 when it could not start.
    `echo` is how the processes' log records are shown (default: by the terminal, see Console).
    """
    environ = os.environ if environ is None else environ
    console = Console.for_stream(stdout or sys.stdout, environ, echo)
    try:
        prepared = _prepare(config, console, environ)
    except (
        ManifestError,
        ProfileError,
        PlanError,
        IdentityError,
        CannotStart,
        NoFreePort,
    ) as error:
        console.error(str(error))
        return EXIT_CANNOT_START
    try:
        return asyncio.run(_serve(config, prepared, console, policy or RestartPolicy()))
    finally:
        prepared.close_sockets()
        os.close(prepared.lock)


def _prepare(config: UpConfig, console: Console, environ: Mapping[str, str]) -> _Prepared:
    """Admit the manifests and plan every process; raise before anything starts."""
    profile = load_profile(config.profile)
    topology = load_topology(config.manifests)
    report_topology(topology, console)
    check_overrides(topology, config.env_overrides)
    if topology.brokers:
        _check_port_free(config.port)
    smtp_socket = listening_socket()
    identity_socket = listening_socket() if oidc_requested(topology, config.oidc) else None
    try:
        return _plan(config, topology, profile, smtp_socket, identity_socket, environ=environ)
    except BaseException:
        smtp_socket.close()
        if identity_socket is not None:
            identity_socket.close()
        raise


def _plan(
    config: UpConfig,
    topology: Topology,
    profile: LocalProfile,
    smtp_socket: socket.socket,
    identity_socket: socket.socket | None,
    *,
    environ: Mapping[str, str],
) -> _Prepared:
    addresses = LocalAddresses(
        f"http://{LOCAL_HOST}:{config.port}", _choose_ports(topology, config)
    )
    smtp_host, smtp_port = smtp_socket.getsockname()[:2]
    smtp_url = f"smtp://{smtp_host}:{smtp_port}"
    first = topology.brokers[0] if topology.brokers else None
    context = LocalContext(
        state_dir=config.state_dir,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        maildir=config.maildir,
        broker_url=addresses.broker_url(first.namespace, first.name) if first else "",
        cwd=config.cwd,
        # The broker's port takes OTLP/HTTP (`/v1/traces`); without a broker nothing does.
        otlp_endpoint=f"http://{LOCAL_HOST}:{config.port}" if first and config.tracing else None,
    )
    identity = (
        plan_identity(topology, config.state_dir, identity_socket)
        if identity_socket is not None
        else None
    )
    names = display_names(topology.services)
    plans = [
        plan_service(
            service,
            names[(service.namespace, service.name)],
            topology,
            port=addresses.service_ports[(service.namespace, service.name)],
            addresses=addresses,
            profile=profile,
            context=context,
            config=config,
            environ=environ,
            identity=identity,
        )
        for service in topology.services
    ]
    if identity is None:
        check_verifiers_have_an_issuer({plan.name: plan.env for plan in plans})
    if topology.brokers:
        plans.insert(0, plan_broker(config, profile, context, environ, identity))
    lock = _lock_state_dir(config)
    try:
        for folder in (config.logs_dir, config.state_dir / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        write_json(
            config.endpoints_file,
            endpoints_document(
                topology,
                addresses,
                smtp_url,
                config.maildir,
                pid=os.getpid(),
                issuer=identity.url if identity is not None else None,
                otlp=(
                    None if context.otlp_endpoint is None else f"{context.otlp_endpoint}{OTLP_PATH}"
                ),
            ),
        )
    except BaseException:
        os.close(lock)
        raise
    table = render(rows(topology, addresses, names, smtp_url, str(config.maildir)))
    return _Prepared(topology, plans, table, smtp_socket, lock, identity, identity_socket)


def _choose_ports(topology: Topology, config: UpConfig) -> dict[tuple[str, str], int]:
    """Each service's port: its `--env SERVICE:PORT=...`, else the next free one after --port."""
    chosen = {
        (service.namespace, service.name): service_port(service, config.env_overrides, None)
        for service in topology.services
    }
    fixed = {port for port in chosen.values() if port is not None}
    automatic = iter(ports_after(config.port, sum(port is None for port in chosen.values()), fixed))
    return {key: port if port is not None else next(automatic) for key, port in chosen.items()}


def _lock_state_dir(config: UpConfig) -> int:
    """Hold `<state-dir>/run/shop-up.lock` for the whole run: one `shop up` per state dir.

    Two runs on one state dir would share the broker's store and overwrite each other's
    endpoints. The kernel drops the lock when the process ends, however it ends.
    """
    config.run_dir.mkdir(parents=True, exist_ok=True)
    path = config.run_dir / "shop-up.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise CannotStart(
            f"another `shop up` (pid {holder}) is using the state dir {config.state_dir}; "
            "stop it, or choose another --state-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def report_topology(topology: Topology, console: Console) -> None:
    """Say once what is not run and what Knative would report not ready."""
    ignored: dict[str, list[str]] = {}
    for item in topology.ignored:
        ignored.setdefault(f"{item.kind} ({item.api_version})", []).append(
            item.name or f"<unnamed at {item.file}:{item.line}>"
        )
    for kind, names in ignored.items():
        console.status(f"ignored (not run locally): {kind}: {', '.join(names)}")
    for condition in topology.not_ready:
        console.status(
            f"not ready: {condition.kind} {condition.namespace}/{condition.name}: "
            f"{condition.reason}: {condition.message}"
        )
    for label in shadowed_services(topology):
        console.status(
            f"endpoints.json: {label} is listed under {label!r} only (its bare name is taken)"
        )
    if not topology.services and not topology.brokers:
        console.status("the manifests define no Knative Service and no Broker")


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOCAL_HOST, port))
        except OSError as error:
            raise CannotStart(
                f"the broker's port {port} is not free ({error.strerror}); is another "
                "`shop up` running? Choose another with --port"
            ) from None


class _Run:
    """The running processes of one `shop up`, and how it ends."""

    def __init__(self, config: UpConfig, console: Console, watchdog: Watchdog) -> None:
        self.config = config
        self.console = console
        self.watchdog = watchdog
        self.processes: list[ManagedProcess] = []
        self.stop = asyncio.Event()
        self.reason = "stopping"
        self._signals = 0

    def on_signal(self, number: signal.Signals) -> None:
        """The first signal stops in order; a second one kills at once."""
        self._signals += 1
        if self._signals == 1:
            self.reason = f"{number.name}: stopping everything"
            self.stop.set()
            return
        self.console.status(f"{number.name} again: killing everything now")
        for process in self.processes:
            process.kill_now()

    def write_processes(self) -> None:
        """processes.json: every pid and process group of this run (tests check them)."""
        document: dict[str, object] = {
            "shop up": {"pid": os.getpid()},
            "watchdog": {"pid": self.watchdog.pid, "pgid": self.watchdog.pid},
        }
        document.update({process.name: process.snapshot() for process in self.processes})
        with contextlib.suppress(OSError):
            write_json(self.config.processes_file, document)

    def on_supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.console.error(f"supervising {task.get_name()} failed: {task.exception()!r}")
        self.reason = "a supervisor failed: stopping everything"
        self.stop.set()


async def _serve(
    config: UpConfig, prepared: _Prepared, console: Console, policy: RestartPolicy
) -> int:
    loop = asyncio.get_running_loop()
    mail = LocalMailServer(config.maildir, prepared.smtp_socket, console)
    await mail.start()
    run = _Run(config, console, Watchdog(config.python, config.stop_grace))
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(number, run.on_signal, number)
    console.status(f"{MAIL_NAME} listening at {mail.url}, keeping mail in {config.maildir}")
    identity: IdentityRuntime | None = None
    if prepared.identity is not None and prepared.identity_socket is not None:
        identity = IdentityRuntime(prepared.identity, prepared.identity_socket, console)
        await identity.start()
    async with HealthProbe() as probe:
        run.processes = [
            ManagedProcess(
                plan,
                cwd=config.cwd,
                console=console,
                log_path=config.logs_dir / f"{plan.name.replace('/', '.')}.log",
                watchdog=run.watchdog,
                policy=policy,
                on_change=run.write_processes,
                is_ready=probe.ready,
            )
            for plan in prepared.plans
        ]
        console.align([MAIL_NAME, *(process.name for process in run.processes)])
        tasks = []
        for process in run.processes:
            task = asyncio.create_task(process.supervise(), name=process.name)
            task.add_done_callback(run.on_supervisor_done)
            tasks.append(task)
        try:
            code = await _until_stopped(run, probe, prepared.table)
        finally:
            console.status(run.reason)
            await asyncio.gather(*(process.stop(config.stop_grace) for process in run.processes))
            await asyncio.gather(*tasks, return_exceptions=True)
            await mail.close()
            if identity is not None:
                await identity.close()
            run.watchdog.close()
            config.processes_file.unlink(missing_ok=True)
            console.status("stopped")
    return code


async def _until_stopped(run: _Run, probe: HealthProbe, table: list[str]) -> int:
    """Wait until everything answers, show the table and `ready`, then wait for the stop."""
    not_ready = await wait_until_ready(
        run.processes, probe, run.config.ready_timeout, run.stop, run.console
    )
    if run.stop.is_set():
        return EXIT_STOPPED
    if not_ready:
        for process in not_ready:
            run.console.error(
                f"{process.name} did not answer {process.plan.health_url} within "
                f"{run.config.ready_timeout:g}s; the last lines of its log ({process.log_path}):"
            )
            for line in process.tail(_LOG_TAIL_LINES) or ["(it wrote nothing)"]:
                run.console.plain(f"    {line}")
        run.reason = "not ready: stopping everything"
        return EXIT_NOT_READY
    for line in table:
        run.console.plain(line)
    run.console.status(f"endpoints in {run.config.endpoints_file}, logs in {run.config.logs_dir}")
    if run.console.echo is LogEcho.HUMAN:
        run.console.status(
            "showing the warnings and errors of the processes; their logs have every line "
            "(--log-format json shows them all here)"
        )
    run.console.status("ready")
    await run.stop.wait()
    return EXIT_STOPPED


def default_cwd() -> Path:
    """Where `shop up` runs: every process runs there too."""
    return Path.cwd()
