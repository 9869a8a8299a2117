"""Entry point of an encoder process: `python -m webapp.render._worker FD PARENT_PID THREADS`."""

import sys

from webapp.render.pool import worker_main

if __name__ == "__main__":
    worker_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
