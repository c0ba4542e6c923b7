"""The employee: LLM backends, AutoGen agents, tools, context management: built in the brain issue (#3)."""
