"""Text translation: prompts, the word stream, and the simultaneous translation session."""
