import sys

from tuner_prune.cli import main

sys.exit(main())
