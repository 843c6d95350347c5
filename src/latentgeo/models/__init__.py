"""Models: names and loading (:mod:`.registry`), the hub guard (:mod:`.hub`), packaged weights
built from installed distributions (:mod:`.packaged`) and the ``latentgeo.json`` model record
(:mod:`.record`). The lowest domain layer: imports nothing of latentgeo but errors and io."""
