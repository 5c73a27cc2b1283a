"""What optuna-dashboard shows: the server ``study dashboard`` starts (``server``), and the study note and
per-trial artifacts a run writes for it (``artifacts``)."""
