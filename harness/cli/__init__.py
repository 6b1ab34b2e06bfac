"""`gameday`, the command line: one module per sub-command, every one with the same grammar
(--home/--target, one-line errors on stderr, exit 2 for bad input). The top layer: nothing imports it.

May import: every part of the harness."""
