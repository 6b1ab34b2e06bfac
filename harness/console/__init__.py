"""The game-day console: a local web page for the room where a game day is held (one stack home).

    app.py     the Starlette application: access token, pages, the live stream, files, abort
    live.py    one run followed from its history as it grows (incremental: never read twice)
    runs.py    what is on disk: the run in progress, game days, runs, the quarterly evidence
    templates/ and static/: plain HTML, CSS and a small script of its own; nothing from elsewhere

Level 7: reads run folders and may start an abort, like the command line (harness/cli/console.py
starts it); nothing below imports it.
"""
