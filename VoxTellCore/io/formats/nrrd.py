"""NRRD (.nrrd, .nhdr) through SimpleITK."""

from VoxTellCore.io.formats.sitk_image import SitkReader, SitkWriter

READER = SitkReader("nrrd", (".nrrd", ".nhdr"))
WRITER = SitkWriter("nrrd", (".nrrd",))
