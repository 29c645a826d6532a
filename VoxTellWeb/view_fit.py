"""Keep a newly opened volume fitted in its views while the page settles.

trame-slicer fits the views when a volume opens, to the size the browser last reported for each;
the page then often reports new sizes (the Segment Editor panel appears, the window is resized),
and Slicer's resize keeps the old field of view: the slice is cut off or small until Reset
Camera. ``FitWhileUntouched`` fits a view again whenever its size changes and it still shows the
fit it was given; once it was moved (zoom, pan, slice slider, rotation, a run centring it on a
segment) a resize keeps what the user sees, as in Slicer.
"""

from __future__ import annotations

from typing import Dict, Tuple

from trame_slicer.core import ViewManager
from trame_slicer.views import AbstractView, SliceView
from vtkmodules.vtkCommonCore import vtkCommand

# Before trame-slicer's own resize observer (priority 0), which changes the slice node's field of view.
BEFORE_TRAME_SLICER = 1.0


class FitWhileUntouched:
    def __init__(self, view_manager: ViewManager) -> None:
        self._view_manager = view_manager
        # view -> (its size, its state) after its last fit; dropped once the view was moved
        self._fitted: Dict[AbstractView, Tuple[tuple, Tuple[float, ...]]] = {}
        self._observed = set()

    def volume_opened(self) -> None:
        """Call after the views were fitted to a newly opened volume."""
        for view in self._view_manager.get_views():
            if view not in self._observed:
                self._observed.add(view)
                view.interactor().AddObserver(vtkCommand.WindowResizeEvent, lambda *_, v=view: self._resized(v),
                                              BEFORE_TRAME_SLICER)
            self._remember(view)

    def _remember(self, view: AbstractView) -> None:
        self._fitted[view] = (tuple(view.render_window().GetSize()), view_state(view))

    def _resized(self, view: AbstractView) -> None:
        if view not in self._fitted:
            return
        size, state = self._fitted[view]
        if tuple(view.render_window().GetSize()) == size:
            return
        if view_state(view) != state:  # moved since the fit: keep it
            del self._fitted[view]
            return
        view.fit_view_to_content()
        view.schedule_render()
        self._remember(view)


def view_state(view: AbstractView) -> Tuple[float, ...]:
    """What a fit sets: the slice node's position, orientation and field of view; the 3D camera."""
    if isinstance(view, SliceView):
        node = view.get_view_node()
        matrix = node.GetSliceToRAS()
        return (*(matrix.GetElement(row, column) for row in range(4) for column in range(4)),
                *node.GetFieldOfView(), *node.GetXYZOrigin())
    camera = view.first_renderer().GetActiveCamera()
    return (*camera.GetPosition(), *camera.GetFocalPoint(), *camera.GetViewUp(), camera.GetParallelScale(),
            camera.GetViewAngle())
