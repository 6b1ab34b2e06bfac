"""The bottom layer: what every part shares and nothing of ours is below. Errors and their
wording, processes by pid, secrets kept out of output, file checksums, the API as its clients call
it (and the digest of a stored row), which PostgreSQL server holds which role.

May import: nothing of ours but harness.core."""
