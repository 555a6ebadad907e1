"""Commands beside a running `odnos serve`: the CLI forwards a command to the server holding the folder.

chDB opens a data folder from one process only, so while `odnos serve` runs on the embedded store no
other process can open it. Rather than a second implementation of each command behind an API, the
CLI sends the command line itself to the server (``client``), which runs the same ``tracker.cli``
handler in a thread of its own against its already-open runtime (``server``), with that thread's
standard streams routed back to the caller (``output``) and its file arguments opening in the
caller's working directory (``paths``). ``keyfile`` is how the two find each other.
"""
