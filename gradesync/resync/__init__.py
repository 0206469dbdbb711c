"""The resync: re-send the scores a resend can fix, with a fresh timestamp, and prove they landed.

Modules: `queue` (tasks from audit findings), `claims` (atomic claiming), `timestamps` (fresh,
strictly increasing score times), `store` (state transitions in the database), `reclassify`
(refusals change findings), `landing` (what to POST so a read-back can prove the score landed, per
vendor), `sender` (talks to the LMS), `runner` (a run's plain steps, which flows/resync.py strings
into the run), `plan` (the CLI's views and approvals).
"""
