"""Model families of hf_attn_at."""
