"""``python -m microast_video`` runs the command line."""

from .cli import main

main()
