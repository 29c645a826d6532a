"""A newly opened volume stays fitted while the page settles (VoxTellWeb.view_fit), on an
in-process app: the browser's size reports go through trame-rca's view adapters, as the page's
``trame.rca.size`` calls do."""

from __future__ import annotations

import asyncio

import pytest

import VoxTellWeb  # noqa: F401  (VoxTellSlicerLib on the path)


@pytest.fixture
def app():
    from trame.app import get_server

    from VoxTellWeb.app import VoxTellWebApp

    return VoxTellWebApp(get_server("view-fit", client_type="vue3"), device="cpu")


def report_size(app, width: int, height: int) -> None:
    """The browser reports every view's size (trame.rca.size -> the view's RcaViewAdapter)."""
    manager = app._slicer_app.view_manager
    for view in manager.get_views():
        factory = next(f for f in manager._factories if f.has_view(view.get_singleton_tag()))
        factory.get_factory_view(view.get_singleton_tag()).view_adapter.update_size("page", {"w": width, "h": height,
                                                                                            "p": 1})


def open_phantom(app, phantom) -> None:
    asyncio.run(app._on_upload([{"name": phantom.name, "content": phantom.read_bytes()}]))
    assert app.server.state.voxtell_has_volume


def assert_fitted(view) -> None:
    """The view shows what its Reset Camera button gives."""
    from VoxTellWeb.view_fit import view_state

    shown = view_state(view)
    view.reset_view()
    assert view_state(view) == pytest.approx(shown, rel=1e-6, abs=1e-6), view.get_singleton_tag()


def test_views_are_refitted_when_the_page_resizes_them_after_an_open(app, phantom):
    report_size(app, 618, 671)
    open_phantom(app, phantom)
    report_size(app, 443, 671)  # the Segment Editor panel appeared beside the views
    views = app._slicer_app.view_manager.get_views()
    assert {view.get_singleton_tag() for view in views} >= {"Red", "Green", "Yellow", "ThreeD"}
    for view in views:
        assert tuple(view.render_window().GetSize()) == (443, 671)
        assert_fitted(view)


def test_a_moved_view_keeps_what_it_shows_on_resize(app, phantom):
    report_size(app, 618, 671)
    open_phantom(app, phantom)
    red = app._slicer_app.view_manager.get_view("Red")
    node = red.get_view_node()
    node.SetSliceOffset(node.GetSliceOffset() + 12)  # the user moved the slice slider
    offset = node.GetSliceOffset()
    report_size(app, 443, 671)
    assert node.GetSliceOffset() == pytest.approx(offset)
    assert_fitted(app._slicer_app.view_manager.get_view("Green"))  # untouched views are still refitted
