"""The `hf-attn-at` command line: `main.py` dispatches to one module per verb."""
