"""``python -m leggedex.cli``: the ``leggedex`` command."""

from leggedex.cli import main

main()
