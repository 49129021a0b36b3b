"""A deployed version at run time: its instances, their slots, and its one queue.

Each instance is the version's container run once more: a command (or a
Docker container) with its own ports, its own supervisor (start-up, health,
exit) and its own worker (``maxRequestConcurrency`` slots). The version's
queue is one :class:`~nvcf_helpers.local.store.InvocationStore` whose
capacity is every instance's slots; a request that gets a slot goes to the
healthy instance with the least work. The version's status follows its
instances' states (:meth:`~nvcf_helpers.local.registry.FunctionVersion.follow_instances`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from nvcf_helpers.errors import NvcfHelperError
from nvcf_helpers.local.asset_store import AssetStore
from nvcf_helpers.local.docker import docker_command, docker_remove_command
from nvcf_helpers.local.function import FunctionStatus, LocalFunction
from nvcf_helpers.local.launcher import start_guard
from nvcf_helpers.local.logs import DEFAULT_LOG_BUDGET_BYTES, LogStore
from nvcf_helpers.local.metrics import VersionMetrics
from nvcf_helpers.local.registry import FunctionVersion
from nvcf_helpers.local.store import Invocation, InvocationStore
from nvcf_helpers.local.supervisor import Supervisor
from nvcf_helpers.local.worker import Forward, Worker, WorkerFiles
from nvcf_helpers.process import free_port

__all__ = ["PORT_PLACEHOLDER", "Deployment", "DeploymentSettings", "Instance", "Launch"]

logger = logging.getLogger("nvcf_helpers.local")

#: In a command, replaced by the instance's own inference port.
PORT_PLACEHOLDER = "{port}"
#: In a command, replaced by the instance's own health port (when it differs).
HEALTH_PORT_PLACEHOLDER = "{health_port}"


@dataclass(frozen=True)
class Launch:
    """How a version's container runs here: a command, or an image run by Docker."""

    command: tuple[str, ...] = ()
    image: str | None = None

    @property
    def has_port_placeholder(self) -> bool:
        """Whether each instance can have its own port (``{port}`` in the command)."""
        return self.image is not None or any(PORT_PLACEHOLDER in part for part in self.command)


@dataclass(frozen=True)
class DeploymentSettings:
    """What every deployment of this local NVCF shares (from the command line)."""

    root: Path
    startup_timeout: float
    max_response_bytes: int
    queue_size: int
    result_ttl: float
    result_budget_bytes: int
    #: Bytes of the containers' log lines kept (``--log-budget-bytes``).
    log_budget_bytes: int = DEFAULT_LOG_BUDGET_BYTES


@dataclass
class Instance:
    """One running copy of the version's container."""

    index: int
    state: LocalFunction
    supervisor: Supervisor
    worker: Worker


def container_session() -> aiohttp.ClientSession:
    """An HTTP session to containers: no pool limit, no timeout, nothing added to requests."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=False,
        # Forward only what the caller sent; aiohttp would add its own Accept-Encoding.
        skip_auto_headers=("Accept-Encoding", "User-Agent"),
    )


class Deployment:
    """The instances, workers and queue of one deployed version."""

    def __init__(
        self,
        version: FunctionVersion,
        launch: Launch,
        settings: DeploymentSettings,
        *,
        files: WorkerFiles,
        assets: AssetStore,
        metrics: VersionMetrics | None = None,
        logs: LogStore | None = None,
    ) -> None:
        self.version = version
        self.launch = launch
        self.settings = settings
        self.files = files
        self.assets = assets
        # Its own connections (this session's for health checks and direct calls, each
        # worker's client for pexec calls): closing them lets its containers stop at once
        # (servers such as Triton wait out their exit timeout for idle keep-alive ones).
        self.session = container_session()
        self.store = InvocationStore(
            capacity=1,
            queue_size=settings.queue_size,
            held_dir=files.body_root,
            result_ttl=settings.result_ttl,
            result_budget=settings.result_budget_bytes,
        )
        self.store.may_dispatch = self.taking_work
        self.metrics = metrics
        self.logs = logs
        if metrics is not None:
            self.store.on_enqueue = metrics.enqueued
            self.store.on_reject = metrics.rejected
        self.instances: list[Instance] = []
        self._follower: asyncio.Task[None] | None = None
        self._stopping = False
        self._guards: list[asyncio.subprocess.Process] = []
        self._turn = 0

    # -- instances ----------------------------------------------------------------------------

    def instance_count(self) -> int:
        """How many instances run: ``minInstances`` (one at least, to serve at all)."""
        return max(1, self.version.min_instances)

    def check_launch(self, count: int | None = None) -> None:
        """Refuse a deployment this launch cannot run, before anything starts.

        Raises:
            NvcfHelperError: more than one instance of a command without ``{port}``.
        """
        count = self.instance_count() if count is None else count
        if count > 1 and not self.launch.has_port_placeholder:
            raise NvcfHelperError(
                f"{count} instances of {self.version.name} need a port each, and its command "
                f"has no {PORT_PLACEHOLDER}: write {PORT_PLACEHOLDER} where the command takes "
                "its port (e.g. -- python server.py --port {port}), or deploy one instance"
            )

    def prepare(self) -> None:
        """Make the ``minInstances`` instances (not started yet)."""
        self.check_launch()
        while len(self.instances) < self.instance_count():
            self._new_instance()

    async def start(self) -> None:
        """Start the instances (made by :meth:`prepare` if not yet) and follow their states."""
        if not self.instances:
            self.prepare()
        for instance in self.instances:
            if instance.supervisor.process is None:
                await instance.supervisor.start()
                await self._guard(instance)
        self.follow()

    def follow(self) -> None:
        """Keep the version's status in step with its instances (from now on)."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def scale(self) -> None:
        """Match the instances to the (updated) deployment specifications."""
        self.check_launch()
        wanted = self.instance_count()
        while len(self.instances) < wanted:
            instance = self._new_instance()
            await instance.supervisor.start()
            await self._guard(instance)
        while len(self.instances) > wanted:
            instance = self.instances.pop()
            await self._stop_instance(instance, grace=5.0)
        for instance in self.instances:
            instance.worker.resize(self.version.max_request_concurrency)
        self._capacity()
        self._report()

    def _instance_spec_and_command(self, index: int) -> tuple[LocalFunction, list[str], list[str]]:
        version = self.version
        spec = version.spec
        if self.launch.has_port_placeholder:
            port = free_port()
            health_port = port if spec.health.port == spec.inference_port else free_port()
            spec = replace(spec, inference_port=port, health=replace(spec.health, port=health_port))
        state = LocalFunction(spec, function_id=version.function_id, version_id=version.version_id)
        cleanup: list[str] = []
        if self.launch.image is not None:
            name = f"nvcf-local-{version.version_id[:8]}-{index}"
            command = docker_command(state, self.launch.image, self.settings.root, name=name)
            cleanup = docker_remove_command(state, name=name)
        else:
            command = [
                part.replace(PORT_PLACEHOLDER, str(spec.inference_port)).replace(
                    HEALTH_PORT_PLACEHOLDER, str(spec.health.port)
                )
                for part in self.launch.command
            ]
        return state, command, cleanup

    def _new_instance(self) -> Instance:
        index = len(self.instances)
        state, command, cleanup = self._instance_spec_and_command(index)
        worker = Worker(
            state,
            self.store,
            self.assets,
            self.settings.root,
            self.session,
            max_concurrency=self.version.max_request_concurrency,
            max_response_bytes=self.settings.max_response_bytes,
            files=self.files,
            metrics=self.metrics,
        )
        on_line = None
        if self.logs is not None:
            version = self.version
            on_line = functools.partial(
                self.logs.add, version.function_id, version.version_id, index
            )
        supervisor = Supervisor(
            state,
            command,
            self.session,
            startup_timeout=self.settings.startup_timeout,
            environment=state.container_environment(),
            on_exit=worker.container_exited,
            cleanup_command=cleanup,
            on_output_line=on_line,
        )
        instance = Instance(index, state, supervisor, worker)
        self.instances.append(instance)
        self._capacity()
        return instance

    def _capacity(self) -> None:
        self.store.capacity = len(self.instances) * self.version.max_request_concurrency

    # -- status -------------------------------------------------------------------------------

    async def _follow(self) -> None:
        """Keep the version's status in step with its instances; serve the queue on changes."""
        while not self._stopping:
            self._report()
            self.store.poke()
            waits = [asyncio.ensure_future(i.state.wait_for_change()) for i in self.instances]
            try:
                await asyncio.wait(waits, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()

    def _report(self) -> None:
        version = self.version
        if version.deployment is None:
            return
        states = [instance.state.status for instance in self.instances]
        failing = next((i.state for i in self.instances if i.state.error), None)
        before = version.status
        reason = fix = None
        if failing is not None:
            reason = f"instance {self.instances.index(self._of(failing))}: {failing.error}"
            fix = failing.fix
        status = version.follow_instances(states, reason, fix)
        if status is not before:
            logger.info(
                "function %s version %s is %s", version.name, version.version_id, status.value
            )

    def _of(self, state: LocalFunction) -> Instance:
        return next(instance for instance in self.instances if instance.state is state)

    def taking_work(self) -> bool:
        """Whether a request may get a slot: an instance takes work, or none can (refused)."""
        if self.version.status not in (FunctionStatus.ACTIVE, FunctionStatus.DEGRADING):
            return True  # the worker answers it (503 while DEPLOYING, ERROR, ...)
        return any(instance.state.taking_work for instance in self.instances)

    def pick(self) -> Instance:
        """The instance for the next request: a healthy one with the least work, in turn."""
        ready = [i for i in self.instances if i.state.taking_work] or self.instances
        least = min(instance.worker.load for instance in ready)
        idle = [instance for instance in ready if instance.worker.load == least]
        self._turn += 1
        return idle[self._turn % len(idle)]

    def submit(self, invocation: Invocation, forward: Forward) -> None:
        """Give a request that got a slot to an instance."""
        self.pick().worker.submit(invocation, forward)

    def health_info(self) -> dict[str, object] | None:
        """The first instance's problem, for ``healthInfo`` (``None`` when all are well)."""
        for instance in self.instances:
            info = instance.state.health_info()
            if info is not None:
                if len(self.instances) > 1:
                    info = {"instance": instance.index, **info}
                return info
        return None

    # -- stopping -----------------------------------------------------------------------------

    def detach(self) -> None:
        """From now on an exiting container is a stop, not a failure."""
        for instance in self.instances:
            instance.supervisor.detach()

    async def release(self) -> None:
        """Stop following the instances, cancel the calls still running, close connections."""
        self._stopping = True
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        for instance in self.instances:
            await instance.worker.close()
        await self.session.close()

    async def stop(self, grace: float) -> None:
        """Stop every instance: workers first (their calls close), then the containers."""
        self.detach()
        await self.release()
        await asyncio.gather(*(self._stop_instance(instance, grace) for instance in self.instances))
        await self.store.close()
        await self.dismiss_guards()

    async def _stop_instance(self, instance: Instance, grace: float) -> None:
        instance.supervisor.detach()
        await instance.worker.close()
        await instance.supervisor.stop(grace)

    async def _guard(self, instance: Instance) -> None:
        process = instance.supervisor.process
        if process is not None:
            guard = await start_guard(
                process.pid, self.settings.root, instance.supervisor.cleanup_command
            )
            if guard is not None:
                self._guards.append(guard)

    async def dismiss_guards(self) -> None:
        """The clean-up is done: end the guards before they could act."""
        guards, self._guards = self._guards, []
        for guard in guards:
            if guard.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    guard.kill()
                await guard.wait()

    def processes(self) -> Sequence[int]:
        """Process ids of the running containers (for the clean-up guard)."""
        return [
            i.supervisor.process.pid
            for i in self.instances
            if i.supervisor.process is not None and i.supervisor.process.returncode is None
        ]
