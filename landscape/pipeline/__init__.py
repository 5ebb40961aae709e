"""Plans that chain the stages: a preset's resolved plan (`plan`), sweeps over one key
(`sweep`) and `landscape run`'s train -> analyze -> report (`run`)."""
