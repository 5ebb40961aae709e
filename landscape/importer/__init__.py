"""`landscape import`: checkpoints trained elsewhere (safetensors only) as runs of a train store.

`checkpoint` is the entry point (`import_checkpoint`); `sources` resolves the user's model
factory and data, `arrays` reads array files, `weights` reads and checks safetensors, `index`
writes the imported points into a store.
"""
