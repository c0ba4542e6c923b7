"""MemGPT-style memory (core, recall, archival) and its stores: built in the brain issue (#3)."""
