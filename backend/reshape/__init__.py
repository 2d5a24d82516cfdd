"""Reshape a selected region of any mesh by score distillation: the selection's vertices (and a
blended band around them) move, smoothly parametrised, so that renders of the region score well
under a 2D prior; every other vertex keeps its exact position."""
