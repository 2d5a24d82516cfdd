"""Guidance methods: each turns renders of the current 3D state into a loss whose gradient is
the method's score (SDS, DreamTime's schedule, Perp-Neg, VSD, ...). One interface, `Guidance`."""
