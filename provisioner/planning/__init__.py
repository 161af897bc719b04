"""Plans: what a sync would change, as plain data (diff, render, JSON)."""
