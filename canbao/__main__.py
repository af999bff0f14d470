"""`python -m canbao`: the same commands as `canbao`."""

from canbao.cli import app

app()
