"""Runnable examples of tus_filter, one way of using it per file.

Run them from the repository root, where ``examples`` is importable: the ini
files with ``PYTHONPATH=. pserve examples/<name>.ini`` (``pserve`` runs from
its own directory, so it does not see the checkout otherwise), the scripts
with ``python -m examples.<name>``.  Each file's docstring or header says
what it shows; ``tests/test_examples.py`` loads, imports and uploads through
every one of them, so none can rot.
"""
