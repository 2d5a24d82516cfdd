"""Score distillation: a 3D representation optimised so that its renders score well under a 2D
image diffusion prior (DreamFusion's SDS and its successors). Plain PyTorch on CUDA, MPS and CPU.

fields and rendering (`field.py`, `volume.py`), random cameras (`cameras.py`), guidance methods
behind one interface (`guidance/`), and the optimisation loop (`trainer.py`). The engine knows
nothing of HTTP or jobs: it takes a progress callback like every pipeline.
"""
