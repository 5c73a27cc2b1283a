"""``study report``: one self-contained HTML file (``build``) from the search (``search``) and the best
trial's ranking quality (``ranking``), with the HTML pieces in ``html``."""
