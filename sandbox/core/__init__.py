"""The pure core: no I/O, no wall clock (time is an argument), no web framework, no database."""
