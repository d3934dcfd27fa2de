"""The study over runs: the grid, the learning-rate search, the results table, premises and claims, the gap."""
