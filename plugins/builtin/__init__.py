"""Arrears' own behaviour, shipped as plugins and registered like external ones."""
