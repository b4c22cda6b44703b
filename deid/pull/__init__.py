"""`deid pull`: fetch approved studies from a PACS (C-FIND, then C-MOVE or C-GET) through the
node's durable path (spool, de-identify, write or forward), resumably, with a summary that names
requests by released values only.

requests: the approved list (accession numbers or patient IDs) and each entry's keyed reference.
query: C-FIND (Study Root) of a request's studies, series and instances.
retrieve: C-MOVE to the pull's own AE, or C-GET into the spool on the pull's association.
node: the node's receiver and workers, in this process, for the pull's duration.
holdings: what of a study is released, quarantined or waiting in the spool (checked, not trusted).
journal: the pull's progress in the records folder (a PHI zone).
summary: complete / partial / not found per request, by reference.
run: the whole pull.
"""
