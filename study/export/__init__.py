"""An exported model directory: written from the best trial (``model_dir``; ``--retrain`` in ``retrain``, the
README in ``model_card``, the folder put in place at ``--out`` by ``out_folder``), its files and checksums
(``manifest``), and loaded again to score candidates (``scoring``: ``Ranker``, ``study rank``)."""
