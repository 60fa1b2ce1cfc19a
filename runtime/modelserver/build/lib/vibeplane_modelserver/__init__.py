"""vibeplane's model server: KServe's ModelServer with the OpenAI chat-completions API.

Backends: `builtin` (the deterministic offline generator, CPU, no weights) and `huggingface`
(a `transformers` causal LM from a folder or s3://, on CUDA when available). See `server.py`
for how the routes are mounted and why, `tokens.py` for the builtin token counts.

This package imports nothing heavy at import time; `kserve` is imported by `model`, `api`
and `server`, `torch`/`transformers` only when the huggingface backend loads.
"""

__version__ = "0.1.0"
