"""Many films at once: ``jobs`` collects them, an engine runs them (``local``: worker
processes here; ``ray_engine``: actors on a Ray cluster, with ``ray_worker`` on the
nodes and ``transport`` carrying films to them), ``worker`` is what both do for one
film, and ``report`` tells what happened."""
