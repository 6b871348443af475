"""What one request may ask of the emulator.

The emulator serves `make demo` and the tests on one event loop, so a single request must
not be able to occupy it for seconds or fill memory (a 100 KB embeddings request used to
produce a 653 MB reply; a tool schema asking for 3,000,000 array items blocked the loop
for 2.8 s). Past a limit the request is refused with a 400 (413 for the body) in the
provider's own error format, the way the real API refuses an over-limit request. Where
the real API has a limit (inputs per embeddings request, tokens per input, dimensions),
the emulator uses the same one; the others are the emulator's own and say so.
"""

from __future__ import annotations

MAX_BODY_BYTES = 32 * 1024 * 1024  # Anthropic's Messages API limit; OpenAI's is lower

MAX_OUTPUT_TOKENS = 128_000  # max_tokens / max_completion_tokens: the largest any model has

MAX_EMBEDDING_INPUTS = 2048  # OpenAI: inputs in one embeddings request
MAX_EMBEDDING_INPUT_TOKENS = 8192  # OpenAI: tokens in one input
MAX_EMBEDDING_DIMENSIONS = 3072  # text-embedding-3-large, the widest
MAX_EMBEDDING_COMPONENTS = 2**18  # the emulator's own: inputs x dimensions in one reply

# Tool-call arguments built from a tool's JSON schema (the emulator's own limits).
MAX_SCHEMA_VALUES = 10_000  # values in one generated instance
MAX_SCHEMA_ITEMS = 1_000  # minItems of one array
MAX_SCHEMA_STRING = 10_000  # minLength of one string
MAX_SCHEMA_INTEGER = 2**53  # |integer| a JSON number holds exactly
