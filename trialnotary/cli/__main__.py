"""``python -m trialnotary.cli``: the ``trialnotary`` command."""

from trialnotary.cli import main

main()
