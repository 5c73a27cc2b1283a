"""The held-out test split: the best trial and the untuned default evaluated once (``held_out``), the
baselines on the same queries (``baselines``), and the comparison with paired intervals, stored
(``comparison``) and shown as text, Markdown, HTML and a figure (``comparison_table``)."""
