"""Running the backend's work over a Ray cluster (many GPUs and machines): batch rows spread over
workers that each keep their models loaded."""
