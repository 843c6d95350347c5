"""The profile: its typed schema (:mod:`.schema`, every setting and path of a run) and the
named profiles a user switches between (:mod:`.profiles`). Above the domains: the schema takes
each vocabulary (method names, quantizer kinds, scopes, precisions) from the module that owns it."""
