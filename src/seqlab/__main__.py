"""`python -m seqlab`: the CLI, and what `torchrun --nproc-per-node N -m seqlab train ...` runs in each process."""

from seqlab.cli import main

if __name__ == "__main__":
    main()
