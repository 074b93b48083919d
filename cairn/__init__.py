"""Cairn: the `cairn` command. Each part registers its own subcommands."""
