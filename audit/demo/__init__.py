"""`audit demo`: racing writers on a simulated workspace, audited end to end.

A small workspace service (blocks kept as JSON files, saved whole, last write wins) is
driven by four concurrent writers: a workflow engine streaming block updates, a template
instantiation uploading files and waiting for embeddings, a poller syncing external
storage, and a user editing content. The store is instrumented with the toolkit's public
API, as a user would instrument their own; independently of the events it also keeps the
ground truth of what happened, so the demo can show the detectors' findings against it.
``--safe`` runs the same workload with compare-and-swap and writer priorities, the fix.
"""
