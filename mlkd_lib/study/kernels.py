"""Warm notebook kernels for the local executor: a step's notebook runs in a kernel that was started, and
had the study's modules imported, while the previous step was still running.

Starting a kernel and importing torch, transformers, pandas and matplotlib takes several seconds — most of a
small step's time. A pool keeps one kernel a job and a spare: after a step that succeeded its namespace is reset
(``%reset -f``, figures closed, torch's default generator seeded anew as a new process's is, so a step sees what
it would in a fresh kernel and never the generator state the previous step left) while the next step runs in
another; after a step that failed the kernel is shut down and a new one started, so an error never leaks into
the next step. papermill still parameterizes each notebook and writes each executed copy. Each kernel is a
process of its own session that exits when the study's process dies, as before.
"""

from __future__ import annotations

import queue
import threading

# what the notebooks import: paid once a kernel, not once a step
PRELOAD = """
import torch, transformers, pandas, matplotlib.pyplot
import mlkd_lib.study.notebook, mlkd_lib.analysis.plots, mlkd_lib.analysis.tables, mlkd_lib.analysis.stats
import mlkd_lib.method.baseline, mlkd_lib.method.train, mlkd_lib.explore.players
"""
RESET = """
import torch, matplotlib.pyplot
matplotlib.pyplot.close("all")
torch.seed()  # a non-deterministic seed, as a new process starts with
%reset -f
"""  # IPython's reset ends with a full garbage collection (most of its ~1 s)
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]  # the kernel's own log lines would clutter the progress display
START_TIMEOUT_S = 120


class KernelError(RuntimeError):
    """A warm kernel that could not start or be reset (the step then runs in a fresh one)."""


def _manager(kernel_name: str):
    """A kernel manager that keeps the clients papermill opens on it: papermill leaves the client of a kernel
    it does not own open, and the pool closes it after the step."""
    from jupyter_client import KernelManager

    class TrackingKernelManager(KernelManager):
        def client(self, **kwargs):
            kc = super().client(**kwargs)
            self.clients.append(kc)
            return kc

    km = TrackingKernelManager(kernel_name=kernel_name)
    km.clients = []
    return km


class WarmKernel:
    """One kernel, started and preloaded in the background; ``km`` is what papermill runs a notebook in."""

    def __init__(self, kernel_name: str = "python3"):
        self.km = _manager(kernel_name)
        self.error: str | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._cancelled = False
        threading.Thread(target=self._start, daemon=True).start()

    def _start(self) -> None:
        try:
            self.km.start_kernel(extra_arguments=KERNEL_ARGS)
            self.run(PRELOAD + RESET)
        except Exception as err:  # a kernel that cannot start: the step says so, the study goes on
            self.error = f"{type(err).__name__}: {err}"
        finally:
            with self._lock:
                self._ready.set()
                cancelled = self._cancelled
            if cancelled:  # shut down while it was starting: nobody waited for it
                self._stop()

    def run(self, code: str) -> None:
        """Run ``code`` in the kernel, raising ``KernelError`` if it fails."""
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=START_TIMEOUT_S)
            reply = kc.execute_interactive(code, timeout=START_TIMEOUT_S, output_hook=lambda msg: None)
        finally:
            kc.stop_channels()
        if reply["content"]["status"] != "ok":
            raise KernelError(f"{reply['content'].get('ename')}: {reply['content'].get('evalue')}")

    def ready(self) -> bool:
        """Wait until started and preloaded; False if that failed."""
        self._ready.wait()
        return self.error is None and self.km.is_alive()

    def reset(self) -> bool:
        """The namespace of a fresh kernel, the modules kept; False if the kernel cannot be reset."""
        for kc in self.km.clients:
            kc.stop_channels()
        self.km.clients.clear()
        try:
            self.run(RESET)
            return True
        except Exception:
            return False

    def shutdown(self) -> None:
        """Stop the kernel; one still starting stops itself when it is up, so nobody waits for it."""
        with self._lock:
            if not self._ready.is_set():
                self._cancelled = True
                return
        self._stop()

    def _stop(self) -> None:
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # already gone
            pass


class KernelPool:
    """Warm kernels for ``size`` jobs and ``spare`` more, started as steps are announced (``expect``; a run whose
    steps are all complete starts none; the spares once the jobs' kernels are ready); ``take`` waits for a ready
    one, ``give_back`` resets it (or replaces it after a failure) in the background, so that the job's next step
    starts at once in a spare instead of waiting the 0.7 s a reset takes. A spare costs a kernel's start (about
    5 s of a core) and is first ready that long after it starts: it is started only for runs of at least
    ``SPARE_AFTER`` steps a job, where it saves more than it costs (a trial's seven steps on one job do not)."""

    SPARE_AFTER = 8

    def __init__(self, size: int, spare: int = 1):
        self.size, self.spare = size, spare
        self._free: queue.Queue[WarmKernel] = queue.Queue()
        self._all: list[WarmKernel] = []
        self._lock = threading.Lock()
        self._jobs = self._spares = 0  # kernels started for the jobs, spares started
        self._closed = False

    def _add(self) -> WarmKernel | None:
        with self._lock:
            if self._closed:  # a failed step's kernel replaced after the study ended: not needed
                return None
            kernel = WarmKernel()
            self._all.append(kernel)
        threading.Thread(target=self._offer, args=(kernel,), daemon=True).start()
        return kernel

    def _offer(self, kernel: WarmKernel) -> None:
        """A kernel joins the free ones once it is up (or failed to start: ``take`` replaces it), so that a step
        never waits for a spare still importing torch while a kernel just reset is ready."""
        kernel.ready()
        self._free.put(kernel)

    def _add_spares(self, first: list[WarmKernel | None], count: int) -> None:
        """The spares, once the jobs' kernels are up: started beside them, they would share the cores with the
        imports the first steps wait for."""
        for kernel in first:
            if kernel is not None:
                kernel.ready()
        for _ in range(count):
            self._add()

    def expect(self, steps: int) -> None:
        """``steps`` steps are about to ask for kernels: start a kernel for each job they can keep busy (up to
        ``size``), and the spares if the run is long enough for them to pay off."""
        with self._lock:
            jobs = max(0, min(self.size, steps) - self._jobs)
            spares = self.spare - self._spares if steps >= self.SPARE_AFTER * self.size else 0
            self._jobs, self._spares = self._jobs + jobs, self._spares + spares
        first = [self._add() for _ in range(jobs)]
        if spares:
            threading.Thread(target=self._add_spares, args=(first, spares), daemon=True).start()

    def take(self) -> WarmKernel | None:
        """A ready kernel, or None when one could not be started (the step then starts its own)."""
        if not self._jobs:  # nobody said how many steps come: a kernel a job and the spares
            self.expect(self.SPARE_AFTER * self.size)
        kernel = self._free.get()
        if kernel.ready():
            return kernel
        kernel.shutdown()
        self._add()
        return None

    def give_back(self, kernel: WarmKernel | None, ok: bool) -> None:
        if kernel is not None:
            threading.Thread(target=self._recycle, args=(kernel, ok), daemon=True).start()

    def _recycle(self, kernel: WarmKernel, ok: bool) -> None:
        if ok and kernel.reset():
            self._free.put(kernel)
            return
        kernel.shutdown()
        self._add()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            kernels = list(self._all)
        for kernel in kernels:
            kernel.shutdown()
