"""``python -m benchmarks …``: the thread counts first (before numpy loads), then the command line."""
import sys

from benchmarks import threads

threads.configure(sys.argv[1:])

from benchmarks.cli import main  # noqa: E402  (numpy loads here, after the thread counts are set)

sys.exit(main())
