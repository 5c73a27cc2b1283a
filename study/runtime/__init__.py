"""Running a study: the request resolved into a config (``request``), one run from checks to the test
comparison (``session``), the worker loop (``worker``), a trial's liveness record (``liveness``) and the
signals (``signals``), local worker processes (``spawn``), trial folders and checkpoints
(``checkpoints``), creating or resuming a study (``studies``), what is recorded where (``attrs``), light
trial questions (``trials``), the checks before a run (``preflight``), the progress line (``progress``) and
experiment trackers (``trackers``). The objective and the workspace it trains on are ``study.objective``
and ``study.workspace``."""
