"""What a run reports: text tables (text), plots (plot), the start banner and end summary (banner). No torch and no
command-line imports: a report can be read anywhere numpy is."""

# geko_hf <= 0.3's `geko_hf.report` module
from .text import (BAR, enrich_history, format_bucket_table, format_hard, format_history,  # noqa: F401
                   format_report, format_suspects, hard_samples, last_eval)
