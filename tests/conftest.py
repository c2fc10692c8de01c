import os

# Tests never reach the Hub: local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
