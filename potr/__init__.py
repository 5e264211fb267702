"""potr package."""
