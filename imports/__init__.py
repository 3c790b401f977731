"""Imports of another product's history into a site: Plausible's CSV export (daily tables kept as
they are, answered as Plausible answers imported data) and Umami's raw events (added to the
event archive and counted like native ones). Decision 0035."""
