"""Item 7 (logic): "Compute on: a VoxTell server". The same logic path writes the segments, so a
remote run equals a local one on the same volume; the URL and key live in the user's settings,
never in a parameter node; remote mode imports no torch; a server that dies mid-run leaves the
segments untouched."""

from __future__ import annotations

import textwrap
import threading

import numpy as np
import pytest
from server_fixtures import serve
from slicer_fixtures import add_volume, lps_ijk_to_ras, phantom, run_probe

from VoxTellCore.errors import InputError
from VoxTellCore.remote.client import ServerError

KEY = "slicer-test-key"


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    model, bank = tiny_model
    with serve(["-m", model, "--embeddings", bank, "--device", "cpu"], tmp_path_factory.mktemp("srv") / "log",
               env={"VOXTELL_API_KEY": KEY}) as running:
        yield running


def voxels(segmentation_node, volume_node) -> dict:
    import slicer

    segmentation = segmentation_node.GetSegmentation()
    state = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        state[segment.GetName()] = (tuple(segment.GetColor()), segment.GetTerminology(),
                                    slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id,
                                                                               volume_node).copy())
    return state


def test_remote_and_local_runs_write_identical_segments(logic, options, server):
    from VoxTellSlicerLib.options import RunOptions

    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    prompts = ["liver", "left kidney", "xyzzy structure"]
    local = voxels(logic.segment(volume_node, prompts, options=options), volume_node)
    logged = []
    remote_options = RunOptions(serverUrl=server.url, serverKey=KEY)
    remote_node = logic.segment(volume_node, prompts, options=remote_options, log=logged.append)
    remote = voxels(remote_node, volume_node)
    assert list(local) == list(remote) == prompts
    for name in prompts:
        assert local[name][:2] == remote[name][:2]
        np.testing.assert_array_equal(local[name][2], remote[name][2])
    assert any(np.any(v[2]) for v in remote.values())
    assert any(f"Segmenting on the VoxTell server at {server.url}" in line for line in logged)
    logic.revertLastRun()  # Revert works the same for a remote run
    assert remote_node.GetScene() is None or remote_node.GetSegmentation().GetNumberOfSegments() == 0


def test_settings_choose_the_server_and_keep_url_and_key_out_of_the_scene(logic, slicer_scene, server):
    from PyQt5.QtCore import QSettings

    from VoxTellSlicerLib.options import RunOptions
    from VoxTellSlicerLib.settings import COMPUTE_ON, SERVER_KEY, SERVER_URL, UserSettings

    settings = UserSettings(QSettings(str(slicer_scene.scene.GetRootDirectory() or "/tmp") + "/voxtell-remote.ini",
                                      QSettings.IniFormat))
    settings.set(COMPUTE_ON, "server")
    settings.set(SERVER_URL, "")
    with pytest.raises(InputError, match="No VoxTell server is set"):
        RunOptions.fromSettings(settings)
    settings.set(SERVER_URL, server.url)
    settings.set(SERVER_KEY, KEY)
    options = RunOptions.fromSettings(settings)
    assert (options.serverUrl, options.serverKey) == (server.url, KEY)
    assert KEY not in repr(options)
    node = slicer_scene.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "VoxTell")
    settings.fillParameterNode(node)
    values = [node.GetParameter(name) for name in node.GetParameterNamesAsCommaSeparatedList().split(",")]
    assert KEY not in values and server.url not in values
    assert "Connected: voxtell-core" in logic.testConnection(server.url, KEY)
    with pytest.raises(ServerError, match="refused the API key"):
        logic.testConnection(server.url, "wrong")
    settings.set(COMPUTE_ON, "local")
    assert RunOptions.fromSettings(settings).serverUrl is None


PROBE = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import numpy as np
    from VoxTellSlicerLib.headless import createHeadlessSlicer
    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.options import RunOptions
    from slicer_fixtures import add_volume, phantom, lps_ijk_to_ras
    headless = createHeadlessSlicer()
    volume_node = add_volume(phantom(), lps_ijk_to_ras())
    node = VoxTellLogic().segment(volume_node, ["liver"], options=RunOptions(serverUrl=sys.argv[3], serverKey=sys.argv[4]))
    print("REPORT " + json.dumps({"segments": node.GetSegmentation().GetNumberOfSegments(),
                                  "torch": "torch" in sys.modules}))
""")


def test_remote_mode_imports_no_torch(server):
    assert run_probe(PROBE, server.url, KEY) == {"segments": 1, "torch": False}


def test_a_server_killed_mid_run_leaves_the_segments_untouched(logic, tiny_model, tmp_path):
    from VoxTellSlicerLib.options import RunOptions

    import slicer

    model, bank = tiny_model
    volume_node = add_volume(phantom((60, 40, 40)), lps_ijk_to_ras())  # 12 windows
    segmentation_node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segment_id = segmentation_node.GetSegmentation().AddEmptySegment("spleen", "spleen", [0.1, 0.2, 0.9])
    mask = np.zeros((60, 40, 40), np.uint8)
    mask[10:30, 5:20, 8:30] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, segmentation_node, segment_id, volume_node)
    before = voxels(segmentation_node, volume_node)
    with serve(["-m", model, "--embeddings", bank, "--device", "cpu"], tmp_path / "log") as server:
        killed = threading.Event()

        def kill_once(done, total):
            if not killed.is_set():
                killed.set()
                server.kill_hard()

        with pytest.raises(ServerError, match="Lost the connection.*Nothing was changed"):
            logic.segment(volume_node, ["spleen", "liver"], segmentationNode=segmentation_node,
                          options=RunOptions(serverUrl=server.url), progress=kill_once)
    after = voxels(segmentation_node, volume_node)
    assert list(after) == list(before) == ["spleen"]
    np.testing.assert_array_equal(after["spleen"][2], before["spleen"][2])


MODULE_PROBE = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import pytest
    from PyQt5.QtCore import QSettings
    from VoxTellSlicerLib.headless import createHeadlessSlicer
    from module_harness import Timer, load_module

    settings = QSettings(sys.argv[3], QSettings.IniFormat)
    settings.setValue("VoxTell/computeOn", "server")
    settings.setValue("VoxTell/serverUrl", "http://127.0.0.1:9")
    headless = createHeadlessSlicer()
    module = load_module(pytest.MonkeyPatch(), settings)
    widget = module.VoxTellSlicerWidget()
    widget.setup()
    widget.enter()
    for callback in list(Timer.single_shots):
        callback()
    options = widget.logic.runOptions()
    print("REPORT " + json.dumps({"torch": "torch" in sys.modules, "probed": widget._devicesProbed,
                                  "server": options.serverUrl}))
""")


def test_the_module_in_remote_mode_never_probes_or_imports_torch(tmp_path):
    assert run_probe(MODULE_PROBE, str(tmp_path / "user.ini")) == {"torch": False, "probed": False,
                                                                  "server": "http://127.0.0.1:9"}
