"""The job runner and the life of one job, from submission to the stored image.

``lifecycle`` (the states and their words) · ``submission`` (planning, pricing a
submission) · ``runner`` (the scheduler and the calls pages make) · ``driver``
(one job: send, follow, download, finish) · ``follow`` (polling) · ``settlement``
(what a failure costs, how the ledger records it) · ``claims`` (who drives a job,
and the transitions only its holder may make).
"""
