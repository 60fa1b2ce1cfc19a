"""The VibeApp controller: prompts to revisions to sandboxed previews."""
