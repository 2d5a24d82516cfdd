"""Built-in part-aware shape model (SPAGHETTI-style part-level diffusion).

A shape is a set of named parts; each part is an explicit oriented box / Gaussian (centre,
rotation, half extents) plus an implicit description of its geometry.

Data side: `primitives` (unit-frame solids), `shapes` (Part, Shape, vocabulary),
`categories/` (one part grammar per object kind), `captions`, `meshing` (voxels, meshes,
surface points) and `data` (the public API: sample_shape, dataset, infer_attributes, ...).
Kept import-light: nothing heavy is imported here.
"""
