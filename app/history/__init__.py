"""Usage history (R24): the daily rollups, and reading them grouped."""
