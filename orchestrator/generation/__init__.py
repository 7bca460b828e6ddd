"""Vectorised generation of related, deliberately dirty e-commerce tables with an answer key."""
