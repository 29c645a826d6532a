"""Opening the module must not freeze Slicer: setup() and enter() import no torch (importing it
and starting CUDA take seconds on the GUI thread); PyTorch is asked for the devices in a
background thread once the panel shows. Checked in a fresh interpreter (sys.modules)."""

from __future__ import annotations

import textwrap

from slicer_fixtures import run_probe

PROBE = textwrap.dedent("""
    import json, sys, time
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import pytest
    from PyQt5.QtCore import QSettings
    from VoxTellSlicerLib.headless import createHeadlessSlicer
    from module_harness import Timer, load_module

    headless = createHeadlessSlicer()
    module = load_module(pytest.MonkeyPatch(), QSettings(sys.argv[3], QSettings.IniFormat))
    report = {"after import": "torch" in sys.modules}
    widget = module.VoxTellSlicerWidget()
    widget.setup()
    widget.enter()
    report["after setup and enter"] = "torch" in sys.modules
    for callback in Timer.single_shots:  # the panel shows
        callback()
    deadline = time.monotonic() + 120
    while Timer.started and time.monotonic() < deadline:
        for timer in list(Timer.started):
            timer.callback()
        time.sleep(0.05)
    report["after the probe"] = "torch" in sys.modules
    report["probed"] = getattr(widget, "_devicesProbed", None)
    print("REPORT " + json.dumps(report))
""")


def test_opening_the_module_imports_no_torch_and_the_probe_runs_later(tmp_path):
    report = run_probe(PROBE, str(tmp_path / "user.ini"))
    assert report == {"after import": False, "after setup and enter": False, "after the probe": True,
                      "probed": True}
