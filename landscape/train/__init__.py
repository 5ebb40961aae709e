"""Training: the typed config and presets (`config`), the K-seed trainer (`trainer`), its
minibatch orders (`orders`) and the experiment that trains every planned run into a store
(`experiment`)."""
