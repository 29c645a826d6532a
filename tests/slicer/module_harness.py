"""VoxTellSlicer.py (the module file) imported on slicer-core, for tests of its widget and logic.

slicer-core lacks the application's Python parts. They are stood in here, each as small as
the module's use of it: ``parameterNodeWrapper`` stores each annotated field on the real
vtkMRMLScriptedModuleNode as Slicer's wrapper does (strings as parameters, nodes as
references), ``ScriptedLoadableModuleLogic.getParameterNode`` is the scene's singleton node,
``slicer.app.userSettings()`` is the QSettings the test passes, ``qt``/``ctk`` widgets accept
anything (QTimers can be fired by the test).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any, get_type_hints

from slicer_fixtures import SLICER_MODULE_DIR


class ParameterNodeWrapper:
    """Slicer's wrapper's storage: str/int fields as parameters, MRML nodes as node references."""

    def __init__(self, node) -> None:
        object.__setattr__(self, "parameterNode", node)

    def __getattr__(self, name: str) -> Any:
        if name not in self._fields():  # AddObserver, RemoveObserver... as Slicer's wrapper forwards them
            return getattr(self.parameterNode, name)
        kind, default = self._fields()[name]
        node = self.parameterNode
        if isinstance(kind, type) and kind.__name__.startswith("vtkMRML"):
            return node.GetNodeReference(name)
        value = node.GetParameter(name)
        return default if not node.GetParameterNames() or name not in node.GetParameterNames() else value

    def __setattr__(self, name: str, value: Any) -> None:
        kind, _ = self._fields()[name]
        if isinstance(kind, type) and kind.__name__.startswith("vtkMRML"):
            self.parameterNode.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        else:
            self.parameterNode.SetParameter(name, str(value))

    def connectGui(self, ui) -> object:
        return object()

    def disconnectGui(self, tag) -> None:
        pass


def parameterNodeWrapper(cls):
    hints = get_type_hints(cls, include_extras=True)
    fields = {name: (getattr(kind, "__origin__", kind), getattr(cls, name, None)) for name, kind in hints.items()}
    return type(cls.__name__, (ParameterNodeWrapper,), {"_fields": staticmethod(lambda: fields)})


class ScriptedLoadableModuleLogic:
    def getParameterNode(self):
        import slicer

        name = type(self).__name__[: -len("Logic")]
        node = slicer.mrmlScene.GetSingletonNode(name, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetSingletonTag(name)
            node.SetModuleName(name)
            node = slicer.mrmlScene.AddNode(node)
        return node


class Anything:
    """Any Qt widget or call the test does not look at: every attribute, call and comparison works."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs) -> Anything:
        return Anything()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Anything()

    def __lt__(self, other) -> bool:
        return False

    __gt__ = __le__ = __ge__ = __lt__


class QtModule(types.ModuleType):
    """``qt``/``ctk`` whose every class is Anything; QTimers are ``Timer``s the test can fire."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return Timer if name == "QTimer" else Anything()


class Timer(Anything):
    """qt.QTimer: ``fire_all()`` runs what each started timer and each singleShot would call."""

    started: list = []
    single_shots: list = []

    def connect(self, signal: str, callback) -> None:
        self.callback = callback

    def start(self) -> None:
        Timer.started.append(self)

    def stop(self) -> None:
        Timer.started.remove(self)

    @staticmethod
    def singleShot(msec: int, callback) -> None:
        Timer.single_shots.append(callback)


class Base:
    layout = Anything()

    def __init__(self, *args, **kwargs) -> None:
        self.parent = Anything()

    def setup(self) -> None:
        pass

    def resourcePath(self, path: str) -> str:
        return path


def load_module(monkeypatch, user_settings):
    """The VoxTellSlicer module object, with ``slicer.app.userSettings()`` returning ``user_settings``."""
    import slicer

    monkeypatch.setattr(slicer.util, "loadUI", Anything(), raising=False)
    monkeypatch.setattr(slicer.util, "childWidgetVariables", Anything(), raising=False)
    loadable = types.ModuleType("slicer.ScriptedLoadableModule")
    loadable.ScriptedLoadableModule = loadable.ScriptedLoadableModuleWidget = Base
    loadable.ScriptedLoadableModuleTest = Base
    loadable.ScriptedLoadableModuleLogic = ScriptedLoadableModuleLogic
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = parameterNodeWrapper
    wrapper.Choice = lambda choices: None
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text
    for module in (loadable, wrapper, i18n, QtModule("qt"), QtModule("ctk")):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    app = types.SimpleNamespace(userSettings=lambda: user_settings, processEvents=lambda *args: None)
    monkeypatch.setattr(slicer, "app", app, raising=False)
    spec = importlib.util.spec_from_file_location("VoxTellSlicer", SLICER_MODULE_DIR / "VoxTellSlicer.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "VoxTellSlicer", module)
    spec.loader.exec_module(module)
    return module


class PythonQtTextEdit:
    """A real PyQt5 QPlainTextEdit with the PythonQt face the module uses."""

    def __init__(self, textEdit) -> None:
        self.textEdit = textEdit

    def toPlainText(self) -> str:
        return self.textEdit.toPlainText()

    def setPlainText(self, text: str) -> None:
        self.textEdit.setPlainText(text)

    def clear(self) -> None:
        self.textEdit.clear()

    def blockSignals(self, block: bool) -> bool:
        return self.textEdit.blockSignals(block)
