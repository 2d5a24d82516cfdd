"""Generation pipelines, one file per (task, method), each with a diffusers-style __call__."""
