"""Where studies are kept: the storage URL and its redaction (``urls``), opening a database once per process
with retries (``database``), SQLite's file checks and transactions (``sqlite``), the locks between workers
(``locks``), and every use of Optuna's private internals (``optuna_private``, the one door to them).

Nothing is imported here, so ``study --help`` loads none of it."""
