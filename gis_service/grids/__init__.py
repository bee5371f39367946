"""Grid partitioning (网格划分) of communities and grid-worker assignment."""
