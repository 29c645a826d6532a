"""VoxTell batch mode: one ``<case>.seg.nrrd`` per image, with segment names, colours and
terminology as the module gives them.

In Slicer (no window):
    Slicer --no-main-window --python-script VoxTellSlicer/batch.py -- \\
        -i images/*.nii.gz -o out -p liver "left kidney" [-m MODEL] [--device cpu] [--no-overwrite]
In plain Python with the ``slicer-core`` wheel:
    python VoxTellSlicer/batch.py -i ... -o out -p liver --terminologies DIR

A file that cannot be read or segmented is reported and skipped; the others are still
done and the exit status is 1. Outputs are written under a temporary name and renamed,
so an interrupted run never leaves a truncated file; ``--no-overwrite`` resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def _ensureImportPaths() -> None:
    """VoxTellSlicerLib sits next to this file; VoxTellCore one level up in a source checkout."""
    for path in (MODULE_DIR, MODULE_DIR.parent):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def parseArgs(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch.py", description="Segment images from text prompts into .seg.nrrd files.")
    parser.add_argument("-i", "--input", nargs="+", required=True, help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    parser.add_argument("-p", "--prompts", nargs="+", required=True, help="text prompts, one segment each")
    parser.add_argument("-m", "--model", default=None, help="model folder or 'demo' (default: the built-in demo model)")
    parser.add_argument("--embeddings", default=None, help="text-embedding bank (.npz) for the prompts")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--no-overwrite", action="store_true", help="skip cases whose .seg.nrrd already exists")
    parser.add_argument("--terminologies", default=None, help="folder of Slicer *.term.json lists (plain Python only)")
    if argv and argv[0] == "--":
        argv = argv[1:]
    return parser.parse_args(argv)


def caseName(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def findImages(inputs: list[str]) -> list[Path]:
    """Files as given (unreadable ones fail later, one by one); folders give their image files."""
    images: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            images += sorted(p for p in item.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
        else:
            images.append(item)
    return images


def loadVolume(scene, path: Path):
    """A scalar volume node read with Slicer's own archetype reader (exact voxels and geometry)."""
    from VoxTellCore.errors import InputError

    if not path.is_file():
        raise InputError(f"{path} does not exist: check the -i paths.")
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", caseName(path))
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node) or node.GetImageData() is None:
        scene.RemoveNode(storage)
        scene.RemoveNode(node)
        raise InputError(f"{path} could not be read as an image: it must be a .nii.gz, .nrrd or .mha volume.")
    return node


def saveSegmentation(segmentationNode, path: Path) -> None:
    """Write a .seg.nrrd atomically: a temporary file in the same folder, then a rename."""
    import slicer

    temporary = path.with_name(f".{path.name[: -len('.seg.nrrd')]}.partial.seg.nrrd")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(temporary))
    storage.SetUseCompression(True)
    try:
        if not storage.WriteData(segmentationNode):
            raise OSError(f"Could not write {path}: check that the output folder is writable.")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def removeWithHelpers(scene, node) -> None:
    """Remove a node with its display and storage nodes, so that long batches do not grow the scene."""
    if node is None:
        return
    helpers = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    helpers += [node.GetNthStorageNode(i) for i in range(node.GetNumberOfStorageNodes())]
    for helper in helpers:
        if helper is not None:
            scene.RemoveNode(helper)
    scene.RemoveNode(node)


def main(argv: list[str] | None = None, logic=None) -> int:
    """Run the batch; returns 0 when every case was written or skipped, 1 when a case failed,
    2 when VoxTell's Python packages could not be set up (inside Slicer)."""
    _ensureImportPaths()
    args = parseArgs(sys.argv[1:] if argv is None else list(argv))

    import slicer

    from VoxTellSlicerLib import VoxTellLogic
    from VoxTellSlicerLib.headless import createHeadlessSlicer, inSlicerApplication

    headless = None if inSlicerApplication() else createHeadlessSlicer(args.terminologies)
    if headless is None:
        # Inside Slicer: the module's first-use setup, without dialogs (PyTorch must be there).
        from VoxTellSlicerLib.dependencies import DependencyError, setupDependencies

        try:
            setupDependencies(log=print, installTorch=lambda log: False)
        except DependencyError as exc:
            print(exc, file=sys.stderr)
            return 2
    scene = slicer.mrmlScene
    logic = logic or VoxTellLogic()
    logic.undoEnabled = False
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    failures: list[tuple[Path, str]] = []
    images = findImages(args.input)
    for number, image in enumerate(images, start=1):
        target = output / f"{caseName(image)}.seg.nrrd"
        if args.no_overwrite and target.exists():
            print(f"[{number}/{len(images)}] {image.name}: {target.name} exists, skipped", flush=True)
            continue
        volume = segmentation = None
        try:
            volume = loadVolume(scene, image)
            segmentation = logic.segment(
                volume, args.prompts, modelPath=args.model, device=args.device, embeddingBank=args.embeddings
            )
            saveSegmentation(segmentation, target)
            print(f"[{number}/{len(images)}] {image.name} -> {target}", flush=True)
        except Exception as exc:  # one bad case must not stop the others
            failures.append((image, f"{type(exc).__name__}: {exc}"))
            print(f"[{number}/{len(images)}] {image.name} FAILED: {exc}", file=sys.stderr, flush=True)
        finally:
            for node in (segmentation, volume):
                removeWithHelpers(scene, node)

    if failures:
        print(f"{len(failures)} of {len(images)} case(s) failed:", file=sys.stderr)
        for image, message in failures:
            print(f"  {image}: {message}", file=sys.stderr)
    del headless
    return 1 if failures else 0


if __name__ == "__main__":
    status = main()
    try:
        import slicer

        if hasattr(slicer, "app"):
            slicer.util.exit(status)
    except ImportError:
        pass
    sys.exit(status)
