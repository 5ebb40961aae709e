"""The core every stage shares: a network as a function of a flat parameter vector
(`flat`), the parameter layout (`layout`), chunked batched evaluation (`batched`) and the
executor that runs independent jobs in process or on Dask (`executor`)."""
