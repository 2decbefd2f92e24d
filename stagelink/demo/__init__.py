"""The embedded demo: sandbox CRMs plus a ready configuration that points at them."""
