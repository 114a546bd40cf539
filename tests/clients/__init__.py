"""Tests of the clients: importers, command line, offline tools."""
