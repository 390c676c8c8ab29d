"""From stored rows to summaries, claims and figures."""
