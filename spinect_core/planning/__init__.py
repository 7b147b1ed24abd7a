"""Planning at L5/S1: meshes, free windows (Kambin, safe), the best view, the needle trajectory.

Submodules are imported directly (``from spinect_core.planning.windows import compute_window``) so
that importing one part does not pull in the others.
"""
