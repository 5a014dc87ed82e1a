"""vllm-pin: exact vLLM compatibility data, and the tools that turn it into working environments."""

__version__ = "0.1.0"
