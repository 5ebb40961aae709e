"""`Probe`: the measures of `landscape analyze` on a user's own model and data, from Python.

`probe` holds the class, `data` the data sources (tensors or batches), `checks` the checks of
what a caller hands in, `results` the result objects (arrays, `.plot`, `.save`).
"""
