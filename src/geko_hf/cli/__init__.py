"""The `geko-hf` command: one module per command (train in main, sft, report), plus what a command prints
(console), its data (data), the packaged offline assets (assets), device defaults and run files."""


def main(argv=None):
    """`geko-hf` (the entry point); the command modules load only when the command runs."""
    from .train import main as run

    return run(argv)
