"""`python -m edge …`: the agent's command without the rest of the platform's (lighter to start)."""

from edge.cli import app

app(prog_name="gridtwin edge")
