"""Where a sweep's tasks run: Dask clusters, from this machine to a Slurm partition.

- :func:`dask_client` with ``workers=N``: a ``distributed.LocalCluster`` of N worker
  processes on this machine, one thread each (a synthesis is one busy process; threads
  would share the GIL of the worker that waits on it for nothing).
- :func:`dask_client` with ``scheduler="tcp://host:8786"``: a running cluster, started on
  hosts that have qdp (and the synth extra) installed::

      dask scheduler                                   # on one host: tcp://host:8786
      dask worker tcp://host:8786 --nthreads 1 --nworkers 4    # on each worker host

- :func:`slurm_cluster`: dask-jobqueue's ``SLURMCluster``, each job one node share
  running ``cores`` single-threaded workers; ``cluster.job_script()`` is what it submits.
"""

import contextlib
import importlib.util
import logging
import os
import sys

__all__ = ["CONNECT_TIMEOUT", "dask_client", "missing_dask", "slurm_cluster"]

#: Seconds to wait for a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = 5.0
_EXTRA = "pip install 'qdp[synth]'"


def missing_dask(*, slurm=False):
    """The packages a sweep needs (``slurm``: also dask-jobqueue) that are not installed."""
    needed = {"dask": "dask", "distributed": "distributed", "tqdm": "tqdm"}
    if slurm:
        needed["dask_jobqueue"] = "dask-jobqueue"
    return [package for module, package in needed.items()
            if importlib.util.find_spec(module) is None]


def _require(slurm=False):
    missing = missing_dask(slurm=slurm)
    if missing:
        raise RuntimeError(f"sweeps need {', '.join(missing)}, which is not installed "
                           f"({_EXTRA})")


@contextlib.contextmanager
def dask_client(scheduler=None, workers=None, *, processes=True,
                connect_timeout=CONNECT_TIMEOUT):
    """A ``distributed.Client``: on a running scheduler, or on a new local cluster that is
    shut down on exit.

    Parameters
    ----------
    scheduler : str or None
        ``tcp://host:port`` of a running ``dask scheduler``; ``None``: a LocalCluster.
    workers : int or None
        Worker processes of the LocalCluster; ``None``: one per CPU.
    processes : bool
        Worker processes (the default); ``False`` runs the workers as threads of this
        process, where a test's monkeypatching reaches them.
    connect_timeout : float
        Seconds to wait for ``scheduler``.

    Raises
    ------
    RuntimeError
        ``"scheduler: cannot reach ..."``: no scheduler answered in ``connect_timeout``
        (or the address is not one); dask is not installed.
    """
    _require()
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, ValueError, TypeError) as error:
            raise RuntimeError(f"scheduler: cannot reach {scheduler} within "
                               f"{connect_timeout:g} s ({' '.join(str(error).split())})") \
                from None
        with client:
            yield client
        return
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    # No dashboard (no bokeh needed), and the scheduler's HTTP server (it always has one,
    # for /health) on a free port rather than 8787, where a neighbour's may sit. The
    # cluster's own warnings (a restarted worker, a slow event loop on a busy machine)
    # stay quiet, since the sweep reports every point itself.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                      silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def slurm_cluster(*, queue=None, account=None, cores=4, memory="16GB", walltime="02:00:00",
                  prologue=(), python=None, **kwargs):
    """A dask-jobqueue ``SLURMCluster`` for sweeps; ``cluster.scale(jobs=N)`` submits N
    jobs, ``cluster.job_script()`` shows the script each one runs.

    Parameters
    ----------
    queue, account : str or None
        Slurm partition (``-p``) and account (``-A``).
    cores : int
        CPUs per job (``--cpus-per-task``): as many single-threaded worker processes.
    memory : str
        Memory per job (``--mem``), shared by its workers.
    walltime : str
        Time limit per job (``-t``); a job's unfinished tasks go to another worker.
    prologue : sequence of str
        Shell lines before the worker starts (activate the environment with qdp).
    python : str or None
        The interpreter that runs the worker; ``None``: this one.
    **kwargs
        Passed to ``SLURMCluster`` (``job_extra_directives``, ``log_directory``, ...).
    """
    _require(slurm=True)
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(cores=cores, processes=cores, memory=memory, walltime=walltime,
                        queue=queue, account=account, job_name="qdp-sweep",
                        job_script_prologue=list(prologue), python=python or sys.executable,
                        **kwargs)
