"""LLM providers: the offline default and, when a key is configured, Anthropic's Claude."""
