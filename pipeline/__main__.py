"""``python -m pipeline`` is the ``maskstream`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
