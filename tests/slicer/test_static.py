"""Checks on the extension's files that need no Slicer application: what the Extensions Index
validator and Slicer's module scanner read (CMake metadata, LICENSE, installed scripts, .ui
names), the module's self-test on a build machine without torch, and the pinned Slicer
terminology lists the tests take colours from."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest
from slicer_fixtures import ROOT, SLICER_MODULE_DIR, TRAME_SLICER_VERSION

UI_FILE = SLICER_MODULE_DIR / "Resources" / "UI" / "VoxTellSlicer.ui"
MODULE_FILE = SLICER_MODULE_DIR / "VoxTellSlicer.py"
LIB_DIR = SLICER_MODULE_DIR / "VoxTellSlicerLib"
EFFECT_DIR = SLICER_MODULE_DIR / "SegmentEditorVoxTellLib"
EXTENSION_CMAKE = ROOT / "CMakeLists.txt"
MODULE_CMAKE = SLICER_MODULE_DIR / "CMakeLists.txt"

# The Extensions Index already has "VoxTell" (another project's extension); names are unique there.
EXTENSION_NAME = "VoxTellSegmentation"
NAMES_TAKEN_IN_THE_INDEX = {"voxtell"}
# raw.githubusercontent.com/<owner>/<repository>/<branch>/<path in the repository>
RAW_URL = re.compile(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/(?P<path>.+)")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def ui_widget_names() -> set[str]:
    tree = ElementTree.parse(UI_FILE)
    return {widget.get("name") for widget in tree.iter("widget")}


def ui_attribute_names(source_path) -> set[str]:
    """Every ``self.ui.<name>`` the code uses."""
    names = set()
    for node in ast.walk(ast.parse(source_path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"):
            names.add(node.attr)
    return names


def test_every_widget_the_code_uses_exists_in_the_ui_file():
    used = ui_attribute_names(MODULE_FILE)
    assert {"runButton", "cancelButton", "promptsTextEdit", "progressBar"} <= used
    missing = used - ui_widget_names()
    assert not missing, f"VoxTellSlicer.py uses widgets that the .ui lacks: {sorted(missing)}"


def test_ui_files_the_code_loads_exist():
    loaded = set()
    for path in SLICER_MODULE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".ui"):
                loaded.add(node.value)
    assert "UI/VoxTellSlicer.ui" in loaded
    for name in loaded:
        assert (SLICER_MODULE_DIR / "Resources" / name).is_file(), f"the code loads {name}, which does not exist"


def test_ui_parameter_bindings_name_parameter_node_fields():
    tree = ElementTree.parse(UI_FILE)
    bound = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[widget.get("name")] = prop.find("string").text
    module = ast.parse(MODULE_FILE.read_text())
    wrapper = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "VoxTellSlicerParameterNode")
    fields = {n.target.id for n in wrapper.body if isinstance(n, ast.AnnAssign)}
    assert set(bound) == {"inputVolumeSelector", "outputSegmentationSelector", "roiSelector"}
    assert set(bound.values()) <= fields


def test_ui_connections_name_existing_widgets():
    tree = ElementTree.parse(UI_FILE)
    names = ui_widget_names()
    for connection in tree.iter("connection"):
        assert connection.find("sender").text in names
        assert connection.find("receiver").text in names


@pytest.mark.parametrize("path", sorted(LIB_DIR.glob("*.py")), ids=lambda p: p.name)
def test_voxtellslicerlib_never_imports_qt(path):
    forbidden = {"qt", "ctk", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.i18n"}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] not in {"qt", "ctk", "PythonQt"} and module not in forbidden, (
                f"{path.name} imports {module}: VoxTellSlicerLib must run without Qt")


# --- what Slicer installs and loads ------------------------------------------------------------

def cmake_listed(cmake_file, variable) -> list[str]:
    text = cmake_file.read_text()
    block = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S).group(1)
    return [item.replace("${MODULE_NAME}", "VoxTellSlicer") for item in block.split()]


def installed_scripts() -> list[str]:
    return cmake_listed(MODULE_CMAKE, "MODULE_PYTHON_SCRIPTS")


def test_module_cmake_lists_every_script_and_resource():
    on_disk = sorted(str(p.relative_to(SLICER_MODULE_DIR)) for p in SLICER_MODULE_DIR.rglob("*.py"))
    assert sorted(installed_scripts()) == on_disk
    for resource in cmake_listed(MODULE_CMAKE, "MODULE_PYTHON_RESOURCES"):
        assert (SLICER_MODULE_DIR / resource).is_file(), resource


@pytest.mark.parametrize("script", installed_scripts())
def test_every_installed_script_exists_and_parses(script):
    path = SLICER_MODULE_DIR / script
    assert path.is_file(), f"VoxTellSlicer/CMakeLists.txt installs {script}, which does not exist"
    ast.parse(path.read_text(), filename=str(path))


def top_level_scripts() -> set[str]:
    """What Slicer scans as modules: top-level .py files of the installed folder and, in
    developer mode, of the source folder."""
    listed = {script for script in installed_scripts() if "/" not in script}
    return listed | {path.name for path in SLICER_MODULE_DIR.glob("*.py")}


def test_slicer_loads_only_modules_from_the_module_folder():
    assert "VoxTellSlicer.py" in top_level_scripts()
    for name in sorted(top_level_scripts()):
        tree = ast.parse((SLICER_MODULE_DIR / name).read_text())
        classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
        module_name = name[: -len(".py")]
        assert module_name in classes, (
            f"Slicer loads VoxTellSlicer/{name} as a module, but it defines no class {module_name} "
            "('class ... was not found' at every start): move it into VoxTellSlicerLib/")


@pytest.mark.parametrize("path", sorted(EFFECT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_segment_editor_effect_files_parse(path):
    ast.parse(path.read_text(), filename=str(path))


def test_segment_editor_effect_defines_the_class_slicer_instantiates():
    """qSlicerSegmentEditorScriptedEffect.setPythonSource loads the class named like the file."""
    tree = ast.parse((EFFECT_DIR / "SegmentEditorEffect.py").read_text())
    effect = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SegmentEditorEffect"), None)
    assert effect is not None, "SegmentEditorEffect.py defines no class SegmentEditorEffect"
    assert [ast.unparse(base) for base in effect.bases] == ["AbstractScriptedSegmentEditorEffect"]
    methods = {n.name for n in effect.body if isinstance(n, ast.FunctionDef)}
    assert {"clone", "icon", "helpText", "setupOptionsFrame"} <= methods
    assert "SegmentEditorVoxTellLib/SegmentEditorEffect.png" in cmake_listed(MODULE_CMAKE, "MODULE_PYTHON_RESOURCES")


def test_help_text_names_the_demo_model_caveat():
    from VoxTellCore.models import DEMO_DESCRIPTION

    assert DEMO_DESCRIPTION == "demo model (synthetic training data, not for clinical images)"
    tree = ast.parse(MODULE_FILE.read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert ("VoxTellCore.models", "DEMO_DESCRIPTION") in imported  # the core's caveat, not a copy
    help_text = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                     and ast.unparse(node.targets[0]) == "self.parent.helpText")
    assert "demo=DEMO_DESCRIPTION" in ast.unparse(help_text.value) and "{demo}" in ast.unparse(help_text.value)


# --- the extension's metadata, as the Extensions Index validator reads it ----------------------

def extension_setting(key) -> str:
    match = re.search(rf'set\s*\({key}\s+"([^"]*)"\s*\)', EXTENSION_CMAKE.read_text())
    assert match, f"{key} is not set in CMakeLists.txt"
    return match.group(1)


def repository_file(url):
    """The file of this repository that a raw URL names."""
    match = RAW_URL.fullmatch(url)
    assert match, f"{url} is not a raw.githubusercontent.com URL"
    return ROOT / match.group("path")


def test_project_name_is_a_distinct_extension_name():
    # The validator's own pattern: the first project() of the top-level CMakeLists.txt.
    names = re.findall(r"project\s*\(\s*([^\s\)\n\r]+)", EXTENSION_CMAKE.read_text(), re.IGNORECASE)
    assert names and names[0] == EXTENSION_NAME
    assert EXTENSION_NAME.lower() not in NAMES_TAKEN_IN_THE_INDEX
    assert not EXTENSION_NAME.lower().startswith("slicer"), "the validator refuses names starting with Slicer"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", EXTENSION_NAME)


def test_extension_metadata_is_set():
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION"):
        assert extension_setting(key).strip(), key
    assert extension_setting("EXTENSION_CATEGORY") == "Segmentation"
    assert "add_subdirectory(VoxTellSlicer)" in EXTENSION_CMAKE.read_text()


def test_extension_depends_on_the_pytorch_extension():
    depends = extension_setting("EXTENSION_DEPENDS").split()
    assert "PyTorch" in depends
    assert "NA" not in depends


def test_icon_url_names_the_icon_in_the_repository():
    icon = repository_file(extension_setting("EXTENSION_ICONURL"))
    assert icon.is_file(), icon
    assert icon.read_bytes().startswith(PNG_SIGNATURE)


def png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_screenshot_urls_name_real_screenshots_in_the_repository():
    icon = repository_file(extension_setting("EXTENSION_ICONURL"))
    urls = extension_setting("EXTENSION_SCREENSHOTURLS").split()
    assert urls
    for url in urls:
        screenshot = repository_file(url)
        assert screenshot.is_file(), f"{url} names {screenshot.relative_to(ROOT)}, which is not in the repository"
        data = screenshot.read_bytes()
        assert screenshot != icon and data != icon.read_bytes(), "the screenshot is the icon"
        assert data.startswith((PNG_SIGNATURE, JPEG_SIGNATURE)), f"{url} is neither PNG nor JPEG"
        assert len(data) < 1_000_000, f"{screenshot.name} is {len(data)} bytes (keep it under 1 MB)"
        if data.startswith(PNG_SIGNATURE):
            width, height = png_size(data)
            assert width >= 800 and height >= 450, f"{screenshot.name} is {width}x{height}: not a screenshot"


def test_homepage_names_a_page_of_the_repository():
    homepage = extension_setting("EXTENSION_HOMEPAGE")
    match = re.fullmatch(r"https://github\.com/[^/]+/[^/]+/blob/[^/]+/(?P<path>.+)", homepage)
    assert match, homepage
    assert (ROOT / match.group("path")).is_file()


LICENSE_SECTIONS = [
    "1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License.", "4. Redistribution.",
    "5. Submission of Contributions.", "6. Trademarks.", "7. Disclaimer of Warranty.",
    "8. Limitation of Liability.", "9. Accepting Warranty or Additional Liability.",
]


def test_license_file_is_the_full_apache_2_text():
    license_file = ROOT / "LICENSE"
    assert license_file.is_file(), "the Extensions Index requires a LICENSE file in the repository root"
    text = license_file.read_text()
    assert text.split()[:5] == ["Apache", "License", "Version", "2.0,", "January"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    for section in LICENSE_SECTIONS:
        assert section in text, section
    assert "END OF TERMS AND CONDITIONS" in text
    assert re.search(r'^license = "Apache-2.0"$', (ROOT / "pyproject.toml").read_text(), re.M)


# --- the module on an extension build machine (no torch) --------------------------------------

# Not in Slicer's Python until the module installs them (torch through the PyTorch extension).
NOT_SHIPPED_WITH_SLICER = ["torch", "nibabel", "transformers", "huggingface_hub", "tokenizers", "safetensors",
                           "dynamic_network_architectures", "tqdm", "psutil"]

# Runs in a fresh interpreter: slicer-core's MRML plus stand-ins for the parts of the Slicer
# application that the wheel lacks (qt, ctk, ScriptedLoadableModule, parameterNodeWrapper...).
SELF_TEST_PROBE = textwrap.dedent("""
    import importlib.util, json, sys, types, unittest

    module_dir, blocked, mode = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    for name in blocked:
        sys.modules[name] = None  # find_spec(name) is None and importing it fails, as without it

    import slicer

    class Anything:
        def __init__(self, *args, **kwargs):
            pass
        def __call__(self, *args, **kwargs):
            return args[0] if len(args) == 1 and isinstance(args[0], type) else Anything()
        def __getattr__(self, name):
            return Anything()

    class AppModule(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Anything

    class ScriptedLoadableModuleTest(unittest.TestCase):  # Slicer's base, without its dialogs
        def delayDisplay(self, message, *args, **kwargs):
            print(message)
        def runTest(self):
            pass

    for name in ("qt", "ctk", "SegmentEditorEffects", "slicer.ScriptedLoadableModule",
                 "slicer.parameterNodeWrapper", "slicer.i18n"):
        sys.modules[name] = AppModule(name)
    sys.modules["slicer.ScriptedLoadableModule"].ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
    sys.modules["slicer.parameterNodeWrapper"].parameterNodeWrapper = lambda cls: cls
    sys.modules["slicer.i18n"].tr = lambda text: text
    sys.modules["slicer.i18n"].translate = lambda context, text: text
    for name in ("ScriptedLoadableModule", "parameterNodeWrapper", "i18n"):
        setattr(slicer, name, sys.modules["slicer." + name])
    sys.path.insert(0, module_dir)
    from VoxTellSlicerLib.headless import createHeadlessSlicer
    headless = createHeadlessSlicer()  # slicer.mrmlScene and slicer.modules, as in the application

    import VoxTellSlicer
    import SegmentEditorVoxTellLib  # the effect registers on the same machine

    report = {}
    if mode == "ctest":
        # What slicer_add_python_unittest runs: slicer.testing.runUnitTest(paths, "VoxTellSlicer").
        suite = unittest.TestLoader().loadTestsFromName("VoxTellSlicer")
        def flatten(tests):
            for test in tests:
                yield from flatten(test) if isinstance(test, unittest.TestSuite) else [test]
        # Collected before the run: a suite drops its tests as it runs them.
        report["module_tests"] = [t.id() for t in flatten(suite) if type(t).__name__ == "VoxTellSlicerTest"]
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
        report["problems"] = [(t.id(), text) for t, text in result.failures + result.errors]
        report["skipped"] = [t.id() for t, reason in result.skipped]
        # What Reload and Test and the SelfTests module call: any exception is a failure there.
        try:
            VoxTellSlicer.VoxTellSlicerTest().runTest()
            report["runTest"] = "returned"
        except BaseException as error:
            report["runTest"] = "raised %r" % error
    else:
        test = VoxTellSlicer.VoxTellSlicerTest()
        try:
            test.setUp()
            test.requireModelPackages()
            report["setUp"] = "ran"
        except unittest.SkipTest as skip:
            report["setUp"] = "skipped: %s" % skip
    print("REPORT " + json.dumps(report))
""")


def run_self_test_probe(blocked: list[str], mode: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", SELF_TEST_PROBE, str(SLICER_MODULE_DIR), json.dumps(blocked), mode],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    reports = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    assert completed.returncode == 0 and reports, (
        f"probe failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    return json.loads(reports[-1][len("REPORT "):])


def test_module_self_test_runs_a_stand_in_prediction_without_torch():
    """Extension build machines have no torch (nor VoxTellCore's other packages): the module and
    its effect must import, the ctest that slicer_add_python_unittest registers must run the
    prompt -> segments test with its stand-in predictor (the demo-model tests skip), and runTest
    (Reload and Test, the SelfTests module) must return without error."""
    report = run_self_test_probe(NOT_SHIPPED_WITH_SLICER, "ctest")
    assert report["module_tests"], "VoxTellSlicer.py registers no VoxTellSlicerTest test"
    assert not report["problems"], report["problems"]
    stand_in = "VoxTellSlicer.VoxTellSlicerTest.test_prompts_become_segments_with_a_stand_in_predictor"
    assert stand_in in report["module_tests"] and stand_in not in report["skipped"], (
        "the build machines must run the prompt -> segments path, not skip it")
    assert len(report["skipped"]) == len(report["module_tests"]) - 1
    assert report["runTest"] == "returned"


def test_module_demo_model_tests_do_not_skip_where_torch_is_installed():
    report = run_self_test_probe([], "with torch")
    assert report["setUp"] == "ran", report["setUp"]


# --- the pinned Slicer terminology lists ---------------------------------------------------------

def recommended_rgb(term_list: dict, slicer_label: str):
    """The recommended colour of the type or modifier with this '3dSlicerLabel'."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("3dSlicerLabel") == slicer_label and "recommendedDisplayRGBValue" in node:
                found.append(tuple(int(c) for c in node["recommendedDisplayRGBValue"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(term_list)
    assert len(found) == 1, f"{slicer_label!r}: {found}"
    return found[0]


def test_pinned_terminology_lists_hold_the_colours_the_tests_expect(terminologies_dir):
    from test_logic import LEFT_KIDNEY_RGB, LIVER_RGB

    general = json.loads(
        (terminologies_dir / "SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json").read_text())
    assert general["SegmentationCategoryTypeContextName"] == "Segmentation category and type - 3D Slicer General Anatomy list"
    assert recommended_rgb(general, "liver") == LIVER_RGB
    assert recommended_rgb(general, "left kidney") == LEFT_KIDNEY_RGB
    assert terminologies_dir.name.endswith(TRAME_SLICER_VERSION)


def test_terminology_extract_script_pins_the_same_trame_slicer():
    script = (ROOT / "scripts" / "extract_slicer_terminology.py").read_text()
    assert re.findall(r"trame-slicer==([0-9.]+)", script) == [TRAME_SLICER_VERSION]


def test_synonyms_table_maps_to_slicer_labels(terminologies_dir):
    table = json.loads((ROOT / "Resources" / "vocabulary" / "slicer_synonyms.json").read_text())
    general = (terminologies_dir / "SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.term.json").read_text()
    labels = set(re.findall(r'"3dSlicerLabel"\s*:\s*"([^"]*)"', general))
    wrong = {k: v for k, v in table.items() if not k.startswith("_") and v not in labels}
    assert not wrong, f"synonyms pointing to labels Slicer's list lacks: {wrong}"
    assert all(k == k.lower() for k in table if not k.startswith("_"))


# --- translation and names ------------------------------------------------------------------------

TRANSLATED_FILES = [MODULE_FILE, EFFECT_DIR / "SegmentEditorEffect.py"]


def translation_calls(path) -> list:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name) and node.func.id in ("_", "translate")]


@pytest.mark.parametrize("path", TRANSLATED_FILES, ids=lambda p: p.name)
def test_translation_functions_get_literal_strings_only(path):
    """Slicer's translation tools extract the literal inside _() / translate(): a variable there
    is never translated."""
    calls = translation_calls(path)
    assert len(calls) > 10
    for call in calls:
        assert call.args and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args), (
            f"{path.name}:{call.lineno}: {ast.unparse(call)}")


def test_the_module_category_is_translated_in_slicers_context():
    tree = ast.parse(MODULE_FILE.read_text())
    categories = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                      and ast.unparse(node.targets[0]) == "self.parent.categories")
    assert ast.unparse(categories.value) == "[translate('qSlicerAbstractCoreModule', 'Segmentation')]"


def module_title() -> str:
    tree = ast.parse(MODULE_FILE.read_text())
    title = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                 and ast.unparse(node.targets[0]) == "self.parent.title")
    return title.value.args[0].value


def test_the_module_title_differs_from_the_other_extensions_voxtell_module():
    assert module_title().lower() not in NAMES_TAKEN_IN_THE_INDEX
    assert module_title() == "VoxTell Segmentation"


def test_the_readme_says_what_its_slicer_screenshot_is():
    """The image is a trame-slicer web page, not the Slicer application: the caption says so."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## 3D Slicer"):]
    section = section[: section.index("\n## ", 1)]
    image = re.search(r"!\[([^\]]*)\]\(([^)]+)\)", section)
    assert image and "trame-slicer" in image.group(1) and "not the Slicer application" in image.group(1)
    caption = section[image.end():section.index("\n\n", image.end())]
    for fact in ("not a screenshot of the 3D Slicer application", "trame-slicer", "synthetic", "demo model",
                 "scripts/render_slicer_screenshot.py", "headless Chromium"):
        assert fact in caption, fact
    assert (ROOT / image.group(2)).is_file()
