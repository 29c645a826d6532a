import sys

from VoxTellWeb.cli import main

sys.exit(main())
