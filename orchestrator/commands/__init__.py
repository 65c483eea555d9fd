"""One module per area of the CLI; registered in orchestrator/cli.py."""
