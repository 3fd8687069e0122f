"""Orchestration: the layer above the engine and the pipeline.

It cuts a run into chunks of draws, runs them on an executor (in process, a local process pool, or a Dask
cluster: :mod:`.executors`), hands each chunk's ledgers to the pipeline when asked, writes the per-draw parts
into the output folder, and folds the chunks' statistics in block order. The engine
(:mod:`fiscal_sim.engine`) and the pipeline (:mod:`fiscal_sim.pipeline`) know nothing of it.
"""
