"""Latent space translation and stitching: closed-form maps (:mod:`.translate`), stitching
(:mod:`.stitch`), similarity indices (:mod:`.similarity`) and sentence embeddings of the
stitching encoders (:mod:`.sentence`)."""
