"""`python -m tinyllm` runs the `tinyllm` command."""

import sys

from .cli import main

# Guarded: the workers of an MPI pool (mpiexec ... python -m mpi4py.futures -m tinyllm) import
# this module again under another name, and must not run the command themselves.
if __name__ == "__main__":
    sys.exit(main())
