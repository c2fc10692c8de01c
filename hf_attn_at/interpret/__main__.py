"""`python -m hf_attn_at.interpret explain ...`."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
