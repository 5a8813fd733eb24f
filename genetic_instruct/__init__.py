"""genetic-instruct: evolve verified synthetic coding data."""
__version__ = "0.1.0"
