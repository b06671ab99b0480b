"""The network side of the method: the re-id networks and their checkpoints, image
transforms, the image dataset and cache, the P x M sampler, feature extraction, and the
training loops (the source baseline f_theta0 and the fine-tuning of step (d))."""
