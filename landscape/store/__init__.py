"""The two HDF5 stores, trained runs (`train_store`) and analysis results (`analysis_store`),
and the per-mode summary read from them (`summary`).
Torch-free, so the report can read them without loading torch."""
