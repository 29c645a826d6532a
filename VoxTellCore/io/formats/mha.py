"""MetaImage (.mha, .mhd) through SimpleITK."""

from VoxTellCore.io.formats.sitk_image import SitkReader, SitkWriter

READER = SitkReader("mha", (".mha", ".mhd"))
WRITER = SitkWriter("mha", (".mha",))
