"""Paste Deploy's ``egg:tus_filter#main`` (``pip install 'tus_filter[paste]'``).

Only string conversion lives here: :func:`~tus_filter.config.options_from_strings`
turns the ini options into :class:`~tus_filter.TusFilter` keyword arguments.
PasteDeploy itself is never imported: it calls this factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import options_from_strings, settings_from_options
from .filter import TusFilter

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def filter_factory(
    global_conf: dict[str, str], **local_conf: str
) -> Callable[[WSGIApplication], WSGIApplication]:
    """Paste Deploy ``egg:tus_filter#main``: every option may be given as an ini string."""
    options = options_from_strings(local_conf)
    settings_from_options(**options)  # validate now, at loadapp() time

    def make_filter(app: WSGIApplication) -> WSGIApplication:
        return TusFilter(app, **options)

    return make_filter
