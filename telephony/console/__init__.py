"""The operator console: a local web page served by ``employai serve``."""
