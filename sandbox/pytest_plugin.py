"""pytest plugin (entry point pytest11): fixtures are added by the harness work in progress."""
