"""Order events: the catalogue of types, how each is built from a change, its envelope."""
