"""Where a study's steps run: ``local`` (papermill processes on this machine, ``--jobs`` at a time) or ``ray`` (one
Ray task per step, on a laptop's local Ray instance or on a cluster). Both take the same planned steps and share
``steps.settle`` (skip / block) and ``steps.Progress``, so a study can be started with one and resumed with the
other: the ``done.json`` markers in the study folder are the only state. Ray is imported only here and only when
asked for, so the rest of the library does not need it."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..device import THREAD_ENV_VARS, cpu_cores
from ..paths import NOTEBOOKS, library_fingerprint
from .kernels import KernelPool
from .steps import Outcome, Progress, Step, execute, run_notebook, settle, waits_for

EXECUTORS = ("local", "ray")
# env vars a step's kernel must see on every node: thread counts (what --jobs shares out) and
# where mlkd_lib is imported from when it runs from a checkout rather than an installed package
_PASSED_ENV = (*THREAD_ENV_VARS, "PYTHONPATH", "HF_HUB_OFFLINE")


@dataclass
class RaySettings:
    """``--ray-*`` options. ``address`` None starts a local Ray instance on this machine's cores."""
    address: str | None = None  # "auto" or HOST:PORT joins a running cluster
    cpus: float | None = None  # per step; None: cores / --jobs on a local instance, 1 on a cluster
    gpus: float | None = None  # per model step; None: 1 where the cluster has GPUs, else 0
    max_retries: int = 3  # re-runs of a step whose worker or node died (never of a notebook error)
    probe_timeout_s: float = 120.0


@contextmanager
def open_executor(kind: str, jobs: int, folders: list[Path], ray_settings: RaySettings | None = None,
                  warm_kernels: bool = True):
    """The one place the executor is chosen. Yields ``(run, info)``: ``run(steps, force, on_done)`` returns the
    outcomes by step name; ``info`` goes into ``run.json``. ``warm_kernels``: the
    local executor runs its steps in kernels kept warm between steps (``kernels.py``)."""
    if kind == "local":
        if ray_settings is not None and ray_settings.address:
            raise ValueError("--ray-address needs --executor ray")

        kernels = KernelPool(jobs) if warm_kernels else None

        def run(steps, force, on_done=None):
            return execute(steps, jobs, force, on_done, kernels)

        try:
            yield run, {"kind": "local", "jobs": jobs, "warm_kernels": warm_kernels}
        finally:
            if kernels is not None:
                kernels.close()
    elif kind == "ray":
        ex = RayExecutor(ray_settings or RaySettings(), jobs)
        try:
            ex.start(folders)
            yield ex.run, ex.info
        finally:
            ex.stop()
    else:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {kind!r}")


def local_cpus_per_step(jobs: int) -> int:
    """On one machine a step gets cores / jobs (what the local executor's threads get too)."""
    return max(1, cpu_cores() // max(1, jobs))


def ray_cpus_per_step(settings: RaySettings, jobs: int) -> float:
    """``--ray-cpus``, else: on a Ray instance this command starts, cores / jobs (as local); on a
    cluster, or a Ray the caller already started, 1 (the cluster's size decides the parallelism)."""
    if settings.cpus is not None:
        return settings.cpus
    ray = sys.modules.get("ray")  # only look: importing Ray here would cost every local run
    running = ray is not None and ray.is_initialized()
    return 1 if settings.address or running else local_cpus_per_step(jobs)


# Ray clusters only the machines it is told to; its own switch for a machine it does not cluster (the
# default on macOS and Windows) makes every Ray process of this machine bind 127.0.0.1
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> None:
    """Make the Ray this process starts or joins live on 127.0.0.1 only, nothing on the machine's network
    address: a local instance nobody else can reach, and a driver that can join a loopback cluster. The
    processes Ray starts inherit the setting."""
    os.environ[LOOPBACK_ENV] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray already imported by the caller: it read the variable then
        constants.ENABLE_RAY_CLUSTER = False


def start_local_ray(ray, **kw) -> None:
    """A local Ray instance on every core. Ray gives a new node 30 s to register (a fixed limit), which a machine
    busy with other work can miss: a start that timed out is tried once more."""
    try:
        ray.init(num_cpus=os.cpu_count() or 1, **kw)
    except Exception as err:
        if "timed out during startup" not in str(err):
            raise
        print(f"Ray: the local instance did not start in time ({err}); starting it once more", flush=True)
        ray.shutdown()
        ray.init(num_cpus=os.cpu_count() or 1, **kw)


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


# --- functions that run on Ray workers (module level: workers import them by name) ----------

def _ray_step(step: Step, force: bool, cwd: str, *deps: Outcome) -> Outcome:
    """One step as a Ray task. Ray starts it once every dependency's task has returned and hands
    over their outcomes (small objects; the data itself stays in files in the study folder)."""
    out = settle(step, list(deps), force)
    if out is not None:
        return out
    import ray
    node = ray.get_runtime_context().get_node_id()
    if step.log_dir is not None:  # who runs the step, for a person (or a test) who has to find the worker
        (step.log_dir / f"{step.name.replace('/', '_')}.worker.json").write_text(
            json.dumps({"pid": os.getpid(), "node": node, "host": socket.gethostname()}))
    outcome = run_notebook(step, cwd=cwd if os.path.isdir(cwd) else None)
    outcome.node = node
    return outcome


def _probe(folders: list[str], token: str, node_id: str) -> dict:
    """Write ``token`` into each folder as this node sees it; the driver reads it back."""
    for folder in folders:
        d = Path(folder) / ".mlkd-probe"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{node_id}.txt").write_text(token)
    return {"host": socket.gethostname(), "notebooks": (NOTEBOOKS / "01_data_prep.ipynb").is_file(),
            "notebooks_dir": str(NOTEBOOKS), "library": library_fingerprint()}


class RayExecutor:
    def __init__(self, settings: RaySettings, jobs: int):
        self.settings, self.jobs = settings, jobs
        self.own_instance = False
        self.info: dict = {"kind": "ray", "address": settings.address or "local instance"}

    def start(self, folders: list[Path]) -> None:
        """Join (or start) Ray, fix the per-step resources, probe the storage on every node."""
        s = self.settings
        if s.address is None or _is_loopback(s.address):
            loopback_only()  # before Ray is imported: it reads the switch once
        try:
            import ray
        except ImportError as err:
            raise RuntimeError("--executor ray needs Ray: pip install -e '.[ray]'") from err
        self.ray = ray
        t0 = time.time()
        cpus = ray_cpus_per_step(s, self.jobs)
        if not ray.is_initialized():  # a caller (a test, a notebook) may have started Ray already
            kw = dict(include_dashboard=False, logging_level="WARNING")
            if s.address:
                try:
                    ray.init(address=s.address, **kw)
                except (ConnectionError, TimeoutError, ValueError) as err:  # what Ray raises for no cluster there
                    raise RuntimeError(f"no Ray cluster at --ray-address {s.address} ({err}): start one with "
                                       f"`ray start --head`, or leave --ray-address out for a local instance") from err
            else:
                start_local_ray(ray, **kw)
            self.own_instance = True
        self.info["startup_s"] = round(time.time() - t0, 2)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        total = ray.cluster_resources()
        gpus = s.gpus if s.gpus is not None else (1 if total.get("GPU", 0) > 0 else 0)
        fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus]
        if not fits:
            have = [{k: v for k, v in n["Resources"].items() if k in ("CPU", "GPU")} for n in nodes]
            raise RuntimeError(f"no Ray node has {cpus} CPUs and {gpus} GPUs for one step (nodes: {have}): "
                               f"lower --ray-cpus / --ray-gpus or add nodes")
        self.cpus, self.gpus = cpus, gpus
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        self.runtime_env = {"env_vars": env} if env else None
        t1 = time.time()
        self._probe_storage(folders, nodes)
        self.info.update(probe_s=round(time.time() - t1, 2), nodes=len(nodes), cpus_per_step=cpus,
                         gpus_per_model_step=gpus, cluster={k: total.get(k, 0) for k in ("CPU", "GPU")},
                         max_retries=s.max_retries)
        print(f"Ray: {len(nodes)} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs "
              f"(ready in {self.info['startup_s']:.1f} s, storage probe {self.info['probe_s']:.1f} s); "
              f"a step gets {cpus:g} CPUs" + (f", a model step {gpus:g} GPU" if gpus else ""), flush=True)

    def _probe_storage(self, folders: list[Path], nodes: list[dict]) -> None:
        """One probe task pinned to each node writes a token into the study (and data) folder; the
        driver must read every token back, or the nodes do not share that folder."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        ray, token = self.ray, uuid.uuid4().hex
        probe = ray.remote(_probe)
        refs = [(n, probe.options(num_cpus=0, runtime_env=self.runtime_env, max_retries=0,
                                  scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                 .remote([str(f) for f in folders], token, n["NodeID"])) for n in nodes]
        try:
            for n, ref in refs:
                where = f"node {n.get('NodeManagerAddress')}"
                try:
                    res = ray.get(ref, timeout=self.settings.probe_timeout_s)
                except ray.exceptions.GetTimeoutError as err:
                    raise RuntimeError(f"the storage probe on {where} did not answer within "
                                       f"{self.settings.probe_timeout_s:.0f} s") from err
                except ray.exceptions.RayError as err:
                    raise RuntimeError(f"the storage probe failed on {where} (is mlkd-ser installed there, "
                                       f"and the study folder writable?): {str(err).strip().splitlines()[-1]}") from err
                if res.get("library") != library_fingerprint():
                    raise RuntimeError(f"{where} ({res['host']}) runs another version of mlkd-ser (code "
                                       f"{res.get('library')} there, {library_fingerprint()} here): install the "
                                       f"same checkout on every node, then start the study again; its finished "
                                       f"steps are kept")
                if not res["notebooks"]:
                    raise RuntimeError(f"{where} ({res['host']}) has no notebooks at {res['notebooks_dir']}: "
                                       f"install mlkd-ser from a checkout (pip install -e '.[ray]') on every node")
                for f in folders:
                    path = f / ".mlkd-probe" / f"{n['NodeID']}.txt"
                    if not path.is_file() or path.read_text() != token:
                        raise RuntimeError(
                            f"{f} is not shared with {where} ({res['host']}): what a step writes there this machine "
                            f"cannot read. The study folder (and data_dir) must be on storage every Ray node mounts "
                            f"at the same path (NFS, Lustre, ...): point --out (and --set data_dir=) at it, "
                            f"e.g. --out /shared/$USER/results/paper")
        finally:
            for f in folders:
                for n in nodes:
                    (f / ".mlkd-probe" / f"{n['NodeID']}.txt").unlink(missing_ok=True)
                try:
                    (f / ".mlkd-probe").rmdir()
                except OSError:
                    pass

    def _options(self, step: Step, force: bool) -> dict:
        light = not force and not step.always_last and step.done_dir.joinpath("done.json").is_file()
        # a complete step only returns "skipped" (or "blocked"): it need not wait for a GPU
        cpus, gpus = (0, 0) if light else (self.cpus, self.gpus if step.gpu else 0)
        return dict(num_cpus=cpus, num_gpus=gpus, max_retries=self.settings.max_retries, retry_exceptions=False,
                    runtime_env=self.runtime_env)

    def run(self, steps: list[Step], force: bool, on_done=None) -> dict[str, Outcome]:
        """Submit every step at once, each with its dependencies' object refs as arguments (Ray
        starts it when they are ready), then report outcomes as they come in. The analyses (``always_last``) are
        submitted once every other step is settled, each given the outcomes of the steps it waits for: it runs
        even when a fold's task died, which an object ref of that task would not allow."""
        ray, cwd = self.ray, os.getcwd()
        task = ray.remote(_ray_step)
        order = {s.name: i for i, s in enumerate(steps)}
        body = [s for s in steps if not s.always_last]
        refs: dict[str, object] = {}
        for s in body:
            missing = [d for d in s.deps if d not in refs]
            if missing:
                raise ValueError(f"step {s.name} needs {missing}, which are not planned before it")
            refs[s.name] = task.options(**self._options(s, force)).remote(s, force, cwd, *(refs[d] for d in s.deps))
        by_ref = {refs[s.name]: s for s in body}
        progress = Progress(steps, on_done)
        outcomes, remaining, ready = progress.outcomes, list(by_ref), []
        while remaining or ready:
            if remaining:
                got, remaining = ray.wait(remaining, num_returns=1)
                if remaining:  # everything else already finished, in one go
                    more, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0)
                    got += more
                ready += got
            # report in plan order, a step only after the steps it needs: an error Ray passes on
            # from a dead dependency must read "blocked", not "failed"
            ready.sort(key=lambda r: order[by_ref[r].name])
            for ref in list(ready):
                s = by_ref[ref]
                if all(d in outcomes for d in s.deps):
                    ready.remove(ref)
                    progress.finish(s, self._outcome(ref, [outcomes[d] for d in s.deps]))
        last = [(s, task.options(**self._options(s, force)).remote(s, force, cwd,
                                                                   *(outcomes[d] for d in waits_for(s, steps))))
                for s in steps if s.always_last]
        for s, ref in last:
            progress.finish(s, self._outcome(ref, []))
        return progress.close()

    def _outcome(self, ref, deps: list[Outcome]) -> Outcome:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as err:  # the worker or its node died max_retries + 1 times
            if any(o.status in ("failed", "blocked") for o in deps):
                return Outcome("blocked")
            return Outcome("failed", 0.0, f"{type(err).__name__}: {str(err).strip().splitlines()[0]}")

    def stop(self) -> None:
        if self.own_instance:
            self.ray.shutdown()
