"""What is kept on disk, and its format: the run's history (the single source of truth for every
verdict), the fault ledger (every fault that leaves state, with its undo and deadline), the
heartbeat ledger (the acknowledged writes RPO is measured against) and the load's ledger shards.
Writers append; readers parse. Nothing here judges (harness.checkers) or acts on a target.

May import: harness.core."""
