"""`python -m seqlab.cli`, the same command as `python -m seqlab` and `seqlab`."""

from seqlab.cli import main

if __name__ == "__main__":
    main()
