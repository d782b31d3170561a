"""`python -m gridtwin.app.cli`: the `gridtwin` command, as the service processes `up` starts run it."""

from gridtwin.app.cli import app

app()
