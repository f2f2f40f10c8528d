"""Distributed search on keras-tuner's chief/worker oracle, and multi-device trials.

keras-tuner's own configuration is used unchanged: ``KERASTUNER_TUNER_ID``
(an id containing ``chief`` makes the chief), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT``. The chief serves the oracle over gRPC
(unauthenticated: keep it on a private network); workers run trials and share
the search directory.

keras-tuner's chief waits forever for a worker that died mid-trial. Here every
worker touches a heartbeat file in the shared directory; the chief hands the
trial of a worker whose heartbeat is older than ``worker_timeout`` to the
remaining workers, or records it as failed when none is left. A worker that
was only slow cannot then end the trial again nor replace its files: see
``tuner_prune.distributed.fencing``.

keras-tuner's worker waits up to an hour for each answer of its chief. Here,
once the chief has answered, a worker waits ``worker_timeout`` at most: a
worker whose chief has exited stops with ``ChiefGone`` (``ChiefDeadline``).
"""

import collections
import math
import os
import sys
import threading
import time

import grpc
import keras_tuner

from tuner_prune.core import _kt
from tuner_prune.core._kt import TrialStatus, metrics_tracking, protos, synchronized

from tuner_prune.settings.config import SearchConfig
from tuner_prune.core.errors import InputError

CHIEF_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
HEARTBEAT_DIR = "heartbeats"
HEARTBEAT_SECONDS = 2.0
DEFAULT_WORKER_TIMEOUT = SearchConfig.worker_timeout
# What a call that waited for the chief ends with when no chief answered it.
CHIEF_LOST = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


def configure(oracle=None, tuner_id=None, environ=os.environ):
    """Sets keras-tuner's variables from ``--oracle HOST:PORT`` and ``--tuner-id``.

    Flags override the environment. A bare ``PORT`` listens on loopback.

    Raises:
        InputError: A malformed address, or only one of address and id given.
    """
    if oracle is not None:
        host, _, port = oracle.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InputError(f"Expected --oracle HOST:PORT, received {oracle!r}.")
        environ["KERASTUNER_ORACLE_IP"] = host or "127.0.0.1"
        environ["KERASTUNER_ORACLE_PORT"] = port
    if tuner_id is not None:
        environ["KERASTUNER_TUNER_ID"] = tuner_id
    given = [name for name in CHIEF_ENV if name in environ]
    if "KERASTUNER_ORACLE_IP" in environ and len(given) != len(CHIEF_ENV):
        missing = sorted(set(CHIEF_ENV) - set(given))
        raise InputError(f"Expected all of {', '.join(CHIEF_ENV)} for a distributed "
                         f"search, received none for {', '.join(missing)}.")
    return role(environ)


def role(environ=os.environ):
    """``"chief"``, ``"worker"`` or ``"local"``."""
    if "KERASTUNER_ORACLE_IP" not in environ:
        return "local"
    return "chief" if "chief" in environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def chief_address(environ=os.environ):
    """The chief's ``HOST:PORT`` from keras-tuner's variables."""
    return f"{environ['KERASTUNER_ORACLE_IP']}:{environ['KERASTUNER_ORACLE_PORT']}"


def heartbeat_path(project_dir, tuner_id):
    return os.path.join(project_dir, HEARTBEAT_DIR, tuner_id)


class Heartbeat:
    """Touches ``heartbeat_path`` every few seconds while a worker runs.

    A failed write (a full disk, a network filesystem hiccup) is reported once
    and retried at the next beat; it does not stop the heartbeat.
    """

    def __init__(self, project_dir, tuner_id, interval=HEARTBEAT_SECONDS):
        self.path = heartbeat_path(project_dir, tuner_id)
        self.interval = interval
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while True:
            self._touch()
            if self._stop.wait(self.interval):
                return

    def _touch(self):
        try:
            with open(self.path, "w", encoding="utf-8") as handle:
                handle.write(str(time.time()))
        except OSError as error:
            if not self.failures:
                print(f"Heartbeat: could not write {self.path} ({error}); retrying "
                      f"every {self.interval:g} s", file=sys.stderr, flush=True)
            self.failures += 1

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


class ChiefGone(keras_tuner.errors.FatalError):
    """The chief of a distributed search stopped answering this worker.

    A ``FatalError``: keras-tuner ends the search instead of failing a trial.
    """


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials",
                         "wait_for_ready", "compression")), grpc.ClientCallDetails):
    """The details of one gRPC call, as an interceptor passes them on."""


class ChiefDeadline(grpc.UnaryUnaryClientInterceptor):
    """Bounds a worker's wait for its chief once the chief has answered.

    Until the chief first answers, a call waits as long as its caller says
    (keras-tuner: an hour, so that workers may start before the chief). After
    that, a call that waits for the chief (``wait_for_ready``) waits
    ``seconds`` at most; when it gets no answer by then, or its connection
    drops, the chief is gone. A call that does not wait (a probe) fails as
    gRPC fails it.

    Args:
        address: The chief's ``HOST:PORT``, for the message.
        seconds: The longest wait for an answer of a chief that answered before.
    """

    def __init__(self, address, seconds):
        self.address = address
        self.seconds = seconds
        self.answered = False

    def intercept_unary_unary(self, continuation, details, request):
        """Runs one call; raises ``ChiefGone`` if a bounded call got no answer."""
        bounded = self.answered and bool(details.wait_for_ready)
        if bounded:
            details = _CallDetails(details.method,
                                   min(details.timeout or math.inf, self.seconds),
                                   details.metadata, details.credentials,
                                   details.wait_for_ready, details.compression)
        outcome = continuation(details, request)
        lost = outcome.code() in CHIEF_LOST
        if bounded and lost:
            raise ChiefGone(
                f"Expected the chief at {self.address} to answer within "
                f"{self.seconds:g} s, received no answer ({outcome.code().name}): "
                f"the chief is gone; this worker stops")
        self.answered = self.answered or not lost
        return outcome


def chief_stub(seconds):
    """keras-tuner's oracle stub to the chief, its waits bounded by ``ChiefDeadline``.

    Args:
        seconds: The longest wait for an answer of a chief that answered before.
    """
    address = chief_address()
    channel = grpc.intercept_channel(grpc.insecure_channel(address),
                                     ChiefDeadline(address, seconds))
    return protos.get_service_grpc().OracleStub(channel)


def stale_workers(oracle, project_dir, worker_timeout, now=None):
    """Tuner ids with an ongoing trial whose heartbeat is older than the timeout."""
    now = time.time() if now is None else now
    stale = []
    for tuner_id in list(oracle.ongoing_trials):
        path = heartbeat_path(project_dir, tuner_id)
        seen = os.path.getmtime(path) if os.path.exists(path) else 0.0
        if now - seen > worker_timeout:
            stale.append(tuner_id)
    return stale


def live_workers(oracle, project_dir, worker_timeout, now=None):
    now = time.time() if now is None else now
    alive = []
    for tuner_id in oracle.tuner_ids:
        path = heartbeat_path(project_dir, tuner_id)
        if os.path.exists(path) and now - os.path.getmtime(path) <= worker_timeout:
            alive.append(tuner_id)
    return alive


def release_dead_workers(oracle, project_dir, worker_timeout):
    """Requeues (or fails) the trials of workers that stopped beating.

    Returns:
        ``[(tuner_id, trial_id, "requeued" | "failed")]``.
    """
    released = []
    for tuner_id in stale_workers(oracle, project_dir, worker_timeout):
        trial = oracle.ongoing_trials.pop(tuner_id)
        oracle.tuner_ids.discard(tuner_id)
        if live_workers(oracle, project_dir, worker_timeout):
            _forget_run(trial)
            _kt.retry_queue(oracle).append(trial.trial_id)
            released.append((tuner_id, trial.trial_id, "requeued"))
        else:
            _fail(oracle, trial, f"worker {tuner_id} stopped responding")
            released.append((tuner_id, trial.trial_id, "failed"))
    oracle.save()
    return released


def _forget_run(trial):
    # Metrics the released worker reported must not score the next run.
    trial.metrics = metrics_tracking.MetricsTracker()
    trial.score, trial.best_step = None, 0


def fail_orphans(oracle, reason):
    """Fails queued trials that no live worker is left to run."""
    queue = _kt.retry_queue(oracle)
    while queue:
        _fail(oracle, oracle.trials[queue.pop()], reason)


def _fail(oracle, trial, reason):
    trial.status = TrialStatus.FAILED
    trial.message = reason
    oracle.end_order.append(trial.trial_id)
    _kt.save_trial(oracle, trial)
    oracle.save()


def serve(oracle, project_dir, worker_timeout=DEFAULT_WORKER_TIMEOUT, log=print):
    """Runs the chief: serves ``oracle`` until the search is over.

    Like keras-tuner's ``oracle_chief.start_server``, but it does not wait for
    workers that died.
    """
    from concurrent import futures

    from tuner_prune.distributed import fencing

    address = chief_address()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = fencing.FencedServicer(oracle, log)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    server.add_insecure_port(address)
    server.start()
    log(f"Chief serving the oracle on {address} (unauthenticated gRPC)", flush=True)
    try:
        while not _search_over(oracle, servicer, project_dir, worker_timeout, log):
            time.sleep(1)
    finally:
        server.stop(grace=2)


@synchronized
def _search_over(oracle, servicer, project_dir, worker_timeout, log):
    for tuner_id, trial_id, outcome in release_dead_workers(
            oracle, project_dir, worker_timeout):
        servicer.leases.revoke(tuner_id, trial_id)
        log(f"Worker {tuner_id} stopped responding: trial {trial_id} {outcome}",
            flush=True)
    if not servicer.stop_triggered:
        return False
    if not live_workers(oracle, project_dir, worker_timeout):
        fail_orphans(oracle, "no worker left to run it")
        oracle.tuner_ids.clear()
    return not oracle.ongoing_trials and not oracle.tuner_ids
