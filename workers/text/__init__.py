"""Pure text logic of the offline provider: tokenising, query rewriting, extractive answers."""
