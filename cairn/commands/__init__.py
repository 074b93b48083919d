"""The `cairn` subcommands, one module per concern; `cairn/cli.py` joins them."""
