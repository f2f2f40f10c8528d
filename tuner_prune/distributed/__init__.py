"""Distributed search on keras-tuner's chief and workers, with leases.

``distribute`` configures the chief and the workers, their heartbeats and the
chief's oracle server; ``fencing`` grants each hand-out of a trial a lease so
that only the worker that holds it ends the trial. Uses the stages below
(``store`` for the records it fences, ``settings``, ``core``).
"""
