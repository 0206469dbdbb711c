"""The `gradesync` command line: the layer above the flows it starts (flows/ → tasks/ → the library).

Nothing under gradesync/, tasks/, models/ or lti_client/ imports this package or flows/; the CLI imports both.
`cli.main` builds the Typer app without importing anything heavy, so `--help` stays fast.
"""
