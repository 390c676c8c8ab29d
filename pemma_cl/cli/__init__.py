"""The ``pemma-bench`` command line (see :mod:`pemma_cl.cli.app`)."""
