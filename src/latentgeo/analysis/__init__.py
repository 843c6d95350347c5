"""Analysis of results: the results table (:mod:`.table`), regressions (:mod:`.regression`,
:mod:`.controls`), figures (:mod:`.figures`, :mod:`.measure_plots`), the paper's published
tables (:mod:`.references`, :mod:`.reanalysis`)."""
