"""Geometry of latent spaces: the noise rule and non-standard models (:mod:`.perturb`), token
vectors (:mod:`.embed`) and the geometric measures (:mod:`.measures`)."""
