"""Fencing of distributed trials: only the worker that holds a trial ends it.

The chief hands a trial to another worker when the first one's heartbeat is
too old, yet that worker may be alive (a paused process, a cached file
attribute, clock skew). Without a fence its late results would end the trial
a second time, and its files could replace those of the run that was scored.

- Leases. Each hand-out of a trial is an attempt with a random token, granted
  by the chief under the oracle's lock and sent back with ``CreateTrial`` as
  gRPC trailing metadata. A worker sends its tuner id and token as metadata
  with ``UpdateTrial``, ``EndTrial`` and a probe (``GetTrial``). The chief
  accepts them, under the same lock, only while
  ``oracle.ongoing_trials[tuner_id]`` is that trial and the token is the one
  of its latest hand-out; otherwise it refuses with ``FAILED_PRECONDITION``
  and the worker raises ``TrialTaken``, drops the run and asks for the next
  trial.
- Files. A worker writes its trial's files under attempt-private names
  (``weights.attempt-<token>.h5``). The chief gives them their real names in
  the locked step that accepts the end, then removes other attempts' files;
  it removes a refused attempt's files when it refuses it. A late worker can
  therefore never replace the accepted files.
- Owner file. At each hand-out and release the chief writes ``owner.json`` in
  the trial folder. A worker reads it once per epoch and, when it names
  another attempt, asks the chief (the file only prompts the question; a
  stale copy of it cannot stop a run the chief still counts on).

Local searches use none of this: same files, same names.
"""

import dataclasses
import glob
import json
import os
import secrets

import grpc

from tuner_prune.core import _kt
from tuner_prune.store import records, resume
from tuner_prune.core._kt import (Trial, TrialStatus, oracle_chief, oracle_client, protos,
                             synchronized)

ATTEMPT_TAG = ".attempt-"
TUNER_KEY = "tuner-prune-tuner-id"
ATTEMPT_KEY = "tuner-prune-attempt"
PROBE_SECONDS = 10.0


class TrialTaken(Exception):
    """The chief gave this worker's trial to another attempt."""


@dataclasses.dataclass
class Lease:
    """One attempt at a trial: who runs it, under which token."""

    tuner_id: str
    trial_id: str
    attempt: str
    lost: bool = False

    def metadata(self):
        return ((TUNER_KEY, self.tuner_id), (ATTEMPT_KEY, self.attempt))


def attempt_path(path, attempt):
    """``weights.h5`` -> ``weights.attempt-<attempt>.h5`` (extension kept)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}{ATTEMPT_TAG}{attempt}{ext}"


def attempt_files(trial_dir, attempt="*"):
    """The attempt-private files in ``trial_dir`` (of one attempt, or of all)."""
    return glob.glob(os.path.join(glob.escape(trial_dir), f"*{ATTEMPT_TAG}{attempt}*"))


def read_owner(trial_dir):
    """``owner.json`` of ``trial_dir`` (``{"tuner_id", "attempt"}``, both
    ``None`` once released), or ``None`` when it cannot be read."""
    path = os.path.join(trial_dir, records.OWNER_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            owner = json.load(handle)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _write_owner(trial_dir, tuner_id, attempt):
    resume.write_json(os.path.join(trial_dir, records.OWNER_FILE),
                      {"tuner_id": tuner_id, "attempt": attempt})


def _remove(paths):
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


# Worker side.

class FencedClient(oracle_client.OracleClient):
    """keras-tuner's ``OracleClient`` that holds and presents its lease.

    Its calls go through ``stub``: ``distribute.chief_stub`` bounds their wait
    for a chief that answered before and raises ``distribute.ChiefGone``; without
    one, keras-tuner's own stub waits as keras-tuner does.

    Attributes:
        lease: The ``Lease`` of the trial this worker runs, or ``None``.
    """

    lease = None

    def __init__(self, oracle, stub=None):
        super().__init__(oracle)
        if stub is not None:
            self.stub = stub

    def create_trial(self, tuner_id):
        request = protos.get_service().CreateTrialRequest(tuner_id=tuner_id)
        response, call = self.stub.CreateTrial.with_call(
            request, wait_for_ready=True, timeout=oracle_client.TIMEOUT)
        trial = Trial.from_proto(response.trial)
        attempt = dict(call.trailing_metadata() or ()).get(ATTEMPT_KEY)
        self.lease = Lease(tuner_id, trial.trial_id, attempt) if attempt else None
        return trial

    def update_trial(self, trial_id, metrics, step=0):
        request = protos.get_service().UpdateTrialRequest(
            trial_id=trial_id, metrics=metrics, step=step)
        response = self._fenced(self.stub.UpdateTrial, request)
        return Trial.from_proto(response.trial)

    def end_trial(self, trial):
        request = protos.get_service().EndTrialRequest(trial=trial.to_proto())
        self._fenced(self.stub.EndTrial, request)

    def check_lease(self, trial_dir):
        """Raises ``TrialTaken`` if the chief gave this trial to another attempt.

        Asks the chief only when ``owner.json`` in ``trial_dir`` names another
        attempt; if the chief cannot be reached, the run goes on (its end is
        fenced anyway).
        """
        lease = self.lease
        if lease is None:
            return
        owner = read_owner(trial_dir)
        if not lease.lost and (owner is None or owner.get("attempt") == lease.attempt):
            return
        request = protos.get_service().GetTrialRequest(trial_id=lease.trial_id)
        try:
            self._fenced(self.stub.GetTrial, request, wait_for_ready=False,
                         timeout=PROBE_SECONDS)
        except grpc.RpcError:
            pass

    def _fenced(self, method, request, wait_for_ready=True,
                timeout=oracle_client.TIMEOUT):
        lease = self.lease
        if lease is not None and lease.lost:
            raise TrialTaken(f"the chief released trial {lease.trial_id} from this worker")
        try:
            return method(request, metadata=lease.metadata() if lease else (),
                          wait_for_ready=wait_for_ready, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            if lease is not None:
                lease.lost = True
            raise TrialTaken(error.details()) from None


# Chief side.

class Leases:
    """The chief's record of which attempt holds each ongoing trial.

    Every method must run under the oracle's lock.
    """

    def __init__(self, oracle):
        self.oracle = oracle
        self._held = {}  # tuner id -> (trial id, attempt token)

    def grant(self, tuner_id, trial, renewal):
        """The token of ``tuner_id``'s attempt at ``trial``: a new one, unless
        ``renewal`` (keras-tuner handed out the trial ``tuner_id`` already runs)."""
        held = self._held.get(tuner_id)
        if not renewal or held is None or held[0] != trial.trial_id:
            held = (trial.trial_id, secrets.token_hex(8))
            self._held[tuner_id] = held
            _write_owner(_kt.trial_dir(self.oracle, trial.trial_id), tuner_id, held[1])
        return held[1]

    def holds(self, tuner_id, trial_id, attempt):
        ongoing = self.oracle.ongoing_trials.get(tuner_id)
        return (ongoing is not None and ongoing.trial_id == trial_id
                and self._held.get(tuner_id) == (trial_id, attempt))

    def revoke(self, tuner_id, trial_id):
        """Ends ``tuner_id``'s attempt at ``trial_id``: the trial was released."""
        self._held.pop(tuner_id, None)
        _write_owner(_kt.trial_dir(self.oracle, trial_id), None, None)


@synchronized
def _hand_out(oracle, leases, tuner_id):
    renewal = tuner_id in oracle.ongoing_trials
    trial = oracle.create_trial(tuner_id)
    if trial.status != TrialStatus.RUNNING:
        return trial, None
    return trial, leases.grant(tuner_id, trial, renewal)


@synchronized
def _check(oracle, leases, claim, trial_id):
    """Whether ``claim`` holds ``trial_id``; a refused attempt's files go."""
    tuner_id, attempt = claim
    if attempt and leases.holds(tuner_id, trial_id, attempt):
        return True
    if attempt:
        _remove(attempt_files(_kt.trial_dir(oracle, trial_id), attempt))
    return False


@synchronized
def _update(oracle, leases, claim, request):
    if not _check(oracle, leases, claim, request.trial_id):
        return None
    return oracle.update_trial(request.trial_id, request.metrics, step=request.step)


@synchronized
def _finish(oracle, leases, claim, trial):
    """Ends ``trial`` if ``claim`` holds it, with its attempt's files in place."""
    if not _check(oracle, leases, claim, trial.trial_id):
        return False
    trial_dir = _kt.trial_dir(oracle, trial.trial_id)
    try:
        for path in attempt_files(trial_dir, claim[1]):
            os.replace(path, path.replace(ATTEMPT_TAG + claim[1], "", 1))
    except OSError as error:
        trial.status = TrialStatus.FAILED
        trial.message = f"the chief could not put the trial's files in place: {error}"
    _remove(attempt_files(trial_dir))  # Left by attempts that were killed.
    oracle.end_trial(trial)
    return True


class FencedServicer(oracle_chief.OracleServicer):
    """keras-tuner's ``OracleServicer`` that grants leases and checks them.

    Args:
        oracle: The chief's oracle.
        log: ``print``-like; one line per ended trial and per refused call.
    """

    def __init__(self, oracle, log=print):
        super().__init__(oracle)
        self.leases = Leases(oracle)
        self.log = log

    def CreateTrial(self, request, context):
        trial, attempt = _hand_out(self.oracle, self.leases, request.tuner_id)
        if trial.status == TrialStatus.STOPPED:
            self.stop_triggered = True
        if attempt:
            context.set_trailing_metadata(((ATTEMPT_KEY, attempt),))
        return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def UpdateTrial(self, request, context):
        claim = _claim(context)
        trial = _update(self.oracle, self.leases, claim, request)
        if trial is None:
            self._refuse(context, claim, request.trial_id, "update")
        return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())

    def EndTrial(self, request, context):
        claim = _claim(context)
        trial = Trial.from_proto(request.trial)
        if not _finish(self.oracle, self.leases, claim, trial):
            self._refuse(context, claim, trial.trial_id, "end")
        status = self.oracle.get_trial(trial.trial_id).status
        self.log(f"Trial {trial.trial_id} ended by {claim[0]}: {status}", flush=True)
        return protos.get_service().EndTrialResponse()

    def GetTrial(self, request, context):
        claim = _claim(context)
        if claim[1] and not _check(self.oracle, self.leases, claim, request.trial_id):
            self._refuse(context, claim, request.trial_id, "continue")
        return super().GetTrial(request, context)

    def _refuse(self, context, claim, trial_id, action):
        tuner_id, attempt = claim
        self.log(f"Refused to {action} trial {trial_id} for {tuner_id} "
                 f"(attempt {attempt}): it no longer holds it; its files removed",
                 flush=True)
        context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                      f"the chief released trial {trial_id} from this worker")


def _claim(context):
    """``(tuner id, attempt token)`` a call presents; ``(None, None)`` if none."""
    metadata = dict(context.invocation_metadata())
    return metadata.get(TUNER_KEY), metadata.get(ATTEMPT_KEY)
