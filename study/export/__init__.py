"""An exported model directory: written from the best trial (``model_dir``), its files and checksums
(``manifest``), and loaded again to score candidates (``scoring``: ``Ranker``, ``study rank``)."""
