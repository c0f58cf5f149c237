"""`python -m lsg_edge.convert COMMAND …` — the same commands as `lsg-edge convert`."""

from .cli import convert_group
from .standalone import run_standalone

if __name__ == "__main__":
    run_standalone(convert_group)
