"""The pure core: the model, node lines, slots, naming, the planner and its rules.

Nothing here does I/O or reads a clock (an import contract enforces it), so every decision the
Job and the sidecars make is a function of what they observed and is unit-tested without Redis.
"""
