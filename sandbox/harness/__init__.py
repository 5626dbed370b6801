"""The sandbox from tests and tools: clients, callback sinks, live server, the pytest plugin."""
