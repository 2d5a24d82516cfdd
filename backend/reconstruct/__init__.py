"""Feed-forward reconstruction: one image to a 3D field in one network pass (TripoSR), then a mesh.

`config` reads the published configuration, `network` is the model, `checkpoint` loads its
weights as tensors only, `triplane` turns its output into density and colour at any point.
"""
